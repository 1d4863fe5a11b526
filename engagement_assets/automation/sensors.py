"""What starts runs without anyone clicking: new telemetry drops, learners found in them, lesson-tracking
exports that land or change. Everything downstream of those follows by declarative automation."""

import os

import dagster as dg

from engagement_assets.automation.watch import change_key, newer_files
from engagement_assets.ingestion.assets import TELEMETRY_PREFIX, cleaned_telemetry
from engagement_assets.matching.assets import merged_responses
from engagement_assets.matching.sessions import SESSIONS_PREFIX, learner_of_sessions_key
from engagement_assets.platform.partitions import telemetry_drops, users
from engagement_assets.platform.resources import StoreResource
from engagement_assets.platform.runs import PARTITION_RANGE_END, PARTITION_RANGE_START
from engagement_assets.responses.assets import user_responses
from engagement_assets.responses.extract import learners_in_drops
from engagement_assets.storage.keys import is_safe_partition_key

# Caps per evaluation keep each tick well inside the sensor timeout; the cursor carries on next tick.
DROPS_PER_TICK = 25
DROP_EVENTS_PER_TICK = 25
SESSION_FILES_PER_TICK = 200
# How often the sensors look (seconds); tests shorten it.
TICK_SECONDS = int(os.environ.get("ENGAGEMENT_SENSOR_INTERVAL_SECONDS", "30"))


@dg.sensor(
    target=[cleaned_telemetry],
    minimum_interval_seconds=TICK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def telemetry_drop_sensor(context: dg.SensorEvaluationContext, landing: StoreResource) -> dg.SensorResult:
    """Registers each file landing under `<landing>/telemetry/` (or rewritten there) as a telemetry_drops
    partition and cleans it."""
    files = [
        f for f in landing.store().list_files(TELEMETRY_PREFIX) if "/" not in f.key[len(TELEMETRY_PREFIX) :]
    ]
    fresh, cursor = newer_files(files, context.cursor, DROPS_PER_TICK)
    drops = {f.key[len(TELEMETRY_PREFIX) :]: f for f in fresh}
    keys = [name for name in drops if is_safe_partition_key(name)]
    for name in sorted(set(drops) - set(keys)):
        context.log.warning(f"skipping {name!r}: not usable as a partition key")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=key, run_key=change_key(drops[key])) for key in keys],
        dynamic_partitions_requests=[telemetry_drops.build_add_request(keys)] if keys else [],
        cursor=cursor,
    )


@dg.sensor(
    target=[user_responses],
    minimum_interval_seconds=TICK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def learners_sensor(context: dg.SensorEvaluationContext, warehouse: StoreResource) -> dg.SensorResult:
    """After a drop is cleaned, registers the learners it holds as `users` partitions and refreshes the
    responses of exactly those learners: new learners in one run, known ones one run each."""
    records = context.instance.fetch_materializations(
        dg.AssetKey("cleaned_telemetry"), limit=DROP_EVENTS_PER_TICK, cursor=context.cursor, ascending=True
    )
    if not records.records:
        return dg.SensorResult(cursor=context.cursor)
    drops = sorted({record.partition_key for record in records.records if record.partition_key})
    learners = learners_in_drops(warehouse.store(), drops)
    safe = [learner for learner in learners if is_safe_partition_key(learner)]
    if len(safe) < len(learners):
        context.log.warning(
            f"{len(learners) - len(safe)} learner id(s) are not usable as partition keys; skipped"
        )
    known = set(context.instance.get_dynamic_partitions(users.name))
    new = [learner for learner in safe if learner not in known]
    tick = records.cursor
    requests = [
        dg.RunRequest(partition_key=learner, run_key=f"{tick}:{learner}")
        for learner in safe
        if learner in known
    ]
    if new:
        # New keys are appended in this order, so one ranged run covers them all.
        requests.append(
            dg.RunRequest(
                run_key=f"{tick}:new:{new[0]}:{new[-1]}",
                tags={PARTITION_RANGE_START: new[0], PARTITION_RANGE_END: new[-1]},
            )
        )
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[users.build_add_request(new)] if new else [],
        cursor=tick,
    )


@dg.sensor(
    target=[merged_responses],
    minimum_interval_seconds=TICK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def sessions_sensor(context: dg.SensorEvaluationContext, landing: StoreResource) -> dg.SensorResult:
    """Re-matches a learner's responses when their lesson-tracking export lands or changes."""
    fresh, cursor = newer_files(
        landing.store().list_files(SESSIONS_PREFIX), context.cursor, SESSION_FILES_PER_TICK
    )
    known = set(context.instance.get_dynamic_partitions(users.name))
    requests = []
    for stored in fresh:
        learner = learner_of_sessions_key(stored.key)
        if learner in known:
            requests.append(dg.RunRequest(partition_key=learner, run_key=change_key(stored)))
    return dg.SensorResult(run_requests=requests, cursor=cursor)


# Stages below the sensors' targets follow their parents: a learner's new responses are matched,
# downloaded, analysed and aggregated without anyone asking.
automation_sensor = dg.AutomationConditionSensorDefinition(
    "downstream_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=TICK_SECONDS,
)

SENSORS = [telemetry_drop_sensor, learners_sensor, sessions_sensor, automation_sensor]
