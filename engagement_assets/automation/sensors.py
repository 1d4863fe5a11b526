"""What starts runs without anyone clicking: new telemetry drops, learners found in them, lesson-tracking
exports that land or change. Everything downstream of those follows by declarative automation."""

import os

import dagster as dg

from engagement_assets.automation.batches import learner_spans
from engagement_assets.automation.watch import change_key, newer_files
from engagement_assets.ingestion.assets import cleaned_telemetry
from engagement_assets.matching.assets import merged_responses
from engagement_assets.platform.partitions import LEARNERS_PER_RUN, telemetry_drops, users
from engagement_assets.platform.resources import StoreResource
from engagement_assets.platform.runs import PARTITION_RANGE_END, PARTITION_RANGE_START
from engagement_assets.responses.assets import user_responses
from engagement_assets.responses.extract import learners_in_drops
from engagement_assets.storage import layout

# Caps per evaluation keep each tick well inside the sensor timeout; the cursor carries on next tick.
DROPS_PER_TICK = 25
DROP_EVENTS_PER_TICK = 25
SESSION_FILES_PER_TICK = 200
# A refresh run may take in this many learners a drop did not touch rather than split in two.
MAX_UNTOUCHED_IN_A_RUN = LEARNERS_PER_RUN // 10
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
    files = {
        stored: key
        for stored in landing.store().list_files(layout.TELEMETRY_PREFIX)
        if (key := layout.drop_of_telemetry_key(stored.key)) is not None
    }
    fresh, cursor = newer_files(files, context.cursor, DROPS_PER_TICK)
    keys = [files[stored] for stored in fresh]
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(partition_key=files[stored], run_key=change_key(stored)) for stored in fresh
        ],
        dynamic_partitions_requests=[telemetry_drops.build_add_request(keys)] if keys else [],
        cursor=cursor,
    )


@dg.sensor(
    target=[user_responses],
    minimum_interval_seconds=TICK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def learners_sensor(context: dg.SensorEvaluationContext, warehouse: StoreResource) -> dg.SensorResult:
    """After drops are cleaned, registers the learners they hold as `users` partitions and refreshes the
    responses of exactly those learners, new and known alike, in ranged runs of up to
    ENGAGEMENT_LEARNERS_PER_RUN learners: a drop over thousands of learners is a few runs, and the
    downstream stages follow in batches too."""
    records = context.instance.fetch_materializations(
        dg.AssetKey("cleaned_telemetry"), limit=DROP_EVENTS_PER_TICK, cursor=context.cursor, ascending=True
    )
    if not records.records:
        return dg.SensorResult(cursor=context.cursor)
    drops = sorted({record.partition_key for record in records.records if record.partition_key})
    learners = learners_in_drops(warehouse.store(), drops)
    registered = context.instance.get_dynamic_partitions(users.name)
    known = set(registered)
    new = [learner for learner in learners if learner not in known]
    tick = records.cursor
    # New keys are appended in this order, so they extend the partition order the runs' ranges follow.
    spans = learner_spans([*registered, *new], learners, LEARNERS_PER_RUN, MAX_UNTOUCHED_IN_A_RUN)
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"{tick}:{first}:{last}",
                tags={PARTITION_RANGE_START: first, PARTITION_RANGE_END: last},
            )
            for first, last in spans
        ],
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
        landing.store().list_files(layout.SESSIONS_PREFIX), context.cursor, SESSION_FILES_PER_TICK
    )
    learner_of = {
        layout.sessions_key(key): key for key in context.instance.get_dynamic_partitions(users.name)
    }
    requests = [
        dg.RunRequest(partition_key=learner_of[stored.key], run_key=change_key(stored))
        for stored in fresh
        if stored.key in learner_of
    ]
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
