"""What starts runs without anyone clicking: new telemetry drops, learners found in them, lesson-tracking
exports that land or change.

The per-learner stages are refreshed by the sensors that know what changed (the learners of a cleaned drop,
the learner whose export landed), not by evaluating a condition over every learner each tick, which costs
minutes at a million learners. The all-learner table follows its own sensor for the same reason;
declarative automation drives the conversation group."""

import time
from functools import partial

import dagster as dg

from engagement_assets.analysis.assets import audio_analysis
from engagement_assets.audio.assets import response_audio
from engagement_assets.automation.batches import RefreshState, keys_in_spans, learner_spans
from engagement_assets.automation.dead_runs import fail_dead_runs
from engagement_assets.automation.partition_order import PartitionOrder, confirmed, partition_order
from engagement_assets.automation.watch import looks_back_to, newer_files
from engagement_assets.features.assets import phase_features, phase_level_engagement
from engagement_assets.ingestion.assets import CLEANED, SOURCE_VERSION, cleaned_telemetry
from engagement_assets.matching.assets import merged_responses
from engagement_assets.platform.partitions import (
    NETWORK_LEARNERS_PER_RUN,
    PARTITION_RANGE_END,
    PARTITION_RANGE_START,
    telemetry_drops,
    users,
)
from engagement_assets.platform.resources import StoreResource
from engagement_assets.responses.assets import user_responses
from engagement_assets.responses.extract import learners_in_drops
from engagement_assets.retention.assets import recording_retention
from engagement_assets.settings import Settings
from engagement_assets.storage import layout
from engagement_assets.storage.keys import is_digest, storage_segment

# Caps per evaluation keep each tick well inside the sensor timeout; the cursor carries on next tick.
DROPS_PER_TICK = 25
DROP_EVENTS_PER_TICK = 25
SESSION_FILES_PER_TICK = 200
PARTITIONS_PER_QUERY = 5_000
# The landing area's telemetry folder holds a few files and a drop should start within seconds; the
# learners and table sensors cost one event-log query when nothing changed. They look at least this often,
# more often than the sessions sensor (ENGAGEMENT_SENSOR_INTERVAL_SECONDS), whose folder holds a file per
# learner.
DROP_TICK_SECONDS = 10
REFRESH_TICK_SECONDS = 5

_IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


# How long a cleaned drop's learners may wait for other drops still being cleaned.
HOLD_FOR_MORE_DROPS_SECONDS = 60.0
# How long the all-learner table may wait for per-learner runs to finish before it is rebuilt anyway.
TABLE_HOLD_SECONDS = 600.0

# One run carries a drop's learners through every per-learner stage, so drop-to-features latency is one
# tick plus the work, not one tick per stage. The network stages keep their pools and their batch size
# (a run that dies costs at most that many learners' downloads and analyses). A run may take in a tenth of
# its size in learners nothing touched rather than split in two.
DROP_REFRESH = [
    user_responses,
    merged_responses,
    response_audio,
    audio_analysis,
    recording_retention,
    phase_features,
]
# A new lesson-tracking export changes the matching and what is built on it; the recordings and their
# analysis follow the responses alone.
SESSIONS_REFRESH = [merged_responses, phase_features]
_LEARNER_ASSETS = {spec.key for spec in DROP_REFRESH}
_RUNNING = dg.DefaultSensorStatus.RUNNING


def register_new_drops(context: dg.SensorEvaluationContext, landing: StoreResource) -> dg.SensorResult:
    """Registers each file landing under `<landing>/telemetry/` (or rewritten there) as a telemetry_drops
    partition and cleans it."""
    listed = _regular_files(context, landing, layout.TELEMETRY_PREFIX, context.cursor)
    files = {
        stored: key for stored in listed if (key := layout.drop_of_telemetry_key(stored.key)) is not None
    }
    fresh, cursor = newer_files(files, context.cursor, DROPS_PER_TICK)
    keys = [files[stored] for stored in fresh]
    # A version some run already cleaned (e.g. `engagement-demo`, before this sensor first looked) is done.
    cleaned = _cleaned_versions(context.instance, keys)
    fresh = [stored for stored in fresh if cleaned.get(files[stored]) != stored.version]
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                partition_key=files[stored],
                run_key=stored.version,
                asset_selection=list(cleaned_telemetry.keys),
            )
            for stored in fresh
        ],
        dynamic_partitions_requests=[telemetry_drops.build_add_request(keys)] if keys else [],
        cursor=cursor,
        skip_reason=None
        if fresh
        else f"no new or rewritten file among the {len(files)} listed under telemetry/ that is not cleaned",
    )


def _cleaned_versions(instance: dg.DagsterInstance, drops: list[str]) -> dict[str, str]:
    """The version of its file each drop's latest cleaning read."""
    versions = {
        record.partition_key: record.asset_materialization.metadata.get(SOURCE_VERSION)
        for record in _latest_records(instance, CLEANED, drops)
    }
    return {drop: version.value for drop, version in versions.items() if version is not None}


def refresh_learners_of_drops(
    context: dg.SensorEvaluationContext, warehouse: StoreResource
) -> dg.SensorResult:
    """After drops are cleaned, registers the learners they hold as `users` partitions and carries exactly
    those learners, new and known alike, through every per-learner stage (responses, matching, recordings,
    analysis, phase features) in ranged runs of up to NETWORK_LEARNERS_PER_RUN (50) learners: one
    tick from a cleaned drop to its learners' features, a few runs however many learners it touches."""
    state = RefreshState.parse(context.cursor)
    records = context.instance.fetch_materializations(
        CLEANED, limit=DROP_EVENTS_PER_TICK, cursor=state.seen, ascending=True
    )
    if not records.records and not state.waiting:
        return dg.SensorResult(cursor=context.cursor, skip_reason="no drop cleaned since the last refresh")
    if records.records and _more_drops_coming(context.instance, records.records[0].timestamp):
        return dg.SensorResult(
            cursor=context.cursor,
            skip_reason="drops are still being cleaned: their learners are refreshed together once they are done",
        )
    drops = sorted({record.partition_key for record in records.records if record.partition_key})
    learners = learners_in_drops(warehouse.store(), drops) if drops else []
    if records.records:
        learners = _not_refreshed_since(context.instance, learners, records.records[-1].storage_id)
    registered = _registered_learners(context.instance, [*state.waiting, *learners])
    new = [learner for learner in learners if learner not in registered.members]
    # New keys are appended in this order, so they extend the partition order the runs' ranges follow.
    return _refresh(
        context,
        RefreshState(records.cursor if records.records else state.seen, state.waiting, state.round),
        order=[*registered.keys, *new],
        affected=[*state.waiting, *learners],
        max_span=NETWORK_LEARNERS_PER_RUN,
        assets=DROP_REFRESH,
        dynamic_partitions_requests=[users.build_add_request(new)] if new else [],
    )


def _not_refreshed_since(instance: dg.DagsterInstance, learners: list[str], cleaned: int) -> list[str]:
    """The learners whose last stage has not been built since the cleaning with storage id `cleaned` (a
    run that already carried them past it, e.g. `engagement-demo`'s, leaves nothing to do)."""
    built = _latest_materializations(instance, DROP_REFRESH[-1].key, learners)
    return [learner for learner in learners if built.get(learner, 0) < cleaned]


def refresh_learners_of_sessions(
    context: dg.SensorEvaluationContext, landing: StoreResource, learners_per_run: int
) -> dg.SensorResult:
    """Re-matches the responses and rebuilds the phase features of the known learners whose lesson-tracking
    export landed or changed, in ranged runs of up to ENGAGEMENT_LEARNERS_PER_RUN learners."""
    state = RefreshState.parse(context.cursor)
    listed = _regular_files(context, landing, layout.SESSIONS_PREFIX, state.seen)
    fresh, seen = newer_files(listed, state.seen, SESSION_FILES_PER_TICK)
    modified = {
        segment: stored.modified
        for stored in fresh
        if (segment := layout.segment_of_sessions_key(stored.key))
    }
    changed = _not_matched_since(context.instance, _known_learners(context.instance, set(modified)), modified)
    if not changed and not state.waiting:
        return dg.SensorResult(
            cursor=RefreshState(seen, [], state.round).dump(),
            skip_reason="no known learner's lesson-tracking export is new or changed",
        )
    return _refresh(
        context,
        RefreshState(seen, state.waiting, state.round),
        order=_registered_learners(context.instance, [*state.waiting, *changed]).keys,
        affected=[*state.waiting, *changed],
        max_span=learners_per_run,
        assets=SESSIONS_REFRESH,
    )


def _regular_files(context, landing: StoreResource, prefix: str, cursor: str | None) -> list:
    """The landing area's files under `prefix` the cursor can still hand out; anything else found there (a
    symbolic link, a FIFO) is never read, and the tick says so."""
    skipped: list[str] = []
    files = landing.store().list_files(prefix, modified_since=looks_back_to(cursor), skipped=skipped)
    if skipped:
        context.log.warning(
            f"{len(skipped)} entr{'y' if len(skipped) == 1 else 'ies'} under {prefix} are not regular files "
            f"and were skipped (symbolic links, FIFOs, devices), e.g. {skipped[:3]}"
        )
    return files


def _not_matched_since(
    instance: dg.DagsterInstance, learners: list[str], modified: dict[str, float]
) -> list[str]:
    """The learners whose export changed after the run that last matched them started. A file that was
    already there when its learner's refresh ran (every file seen for the first time after the learner was
    registered) needs nothing more."""
    records = _latest_records(instance, merged_responses.key, learners)
    if not records:
        return learners
    runs = instance.get_run_records(filters=dg.RunsFilter(run_ids=list({r.run_id for r in records})))
    started = {run.dagster_run.run_id: run.start_time for run in runs}
    read_at = {r.partition_key: started.get(r.run_id) for r in records}
    return [
        learner
        for learner in learners
        if read_at.get(learner) is None or modified[storage_segment(learner)] >= read_at[learner]
    ]


def _latest_materializations(
    instance: dg.DagsterInstance, asset: dg.AssetKey, partitions: list[str]
) -> dict[str, int]:
    """The storage id of each partition's latest materialization, in queries of PARTITIONS_PER_QUERY keys
    (a database bounds the parameters of one statement)."""
    latest: dict[str, int] = {}
    for start in range(0, len(partitions), PARTITIONS_PER_QUERY):
        latest.update(
            instance.event_log_storage.get_latest_storage_id_by_partition(
                asset,
                dg.DagsterEventType.ASSET_MATERIALIZATION,
                partitions=set(partitions[start : start + PARTITIONS_PER_QUERY]),
            )
        )
    return latest


def _latest_records(instance: dg.DagsterInstance, asset: dg.AssetKey, partitions: list[str]) -> list:
    """Each partition's latest materialization record (for its metadata or its run)."""
    latest = _latest_materializations(instance, asset, partitions)
    if not latest:
        return []
    return instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset, storage_ids=list(latest.values())), limit=len(latest)
    ).records


def _more_drops_coming(instance: dg.DagsterInstance, first_cleaned_at: float) -> bool:
    """Whether to wait for drops still being cleaned: an export that lands as several files then refreshes
    each learner once, not once per file (the second refresh would wait for the first). Never for longer
    than HOLD_FOR_MORE_DROPS_SECONDS, so a long stage-1 run does not hold back the drops cleaned before it."""
    if time.time() - first_cleaned_at > HOLD_FOR_MORE_DROPS_SECONDS:
        return False
    return bool(_runs_in_flight(instance, {CLEANED}))


def _runs_in_flight(instance: dg.DagsterInstance, assets: set[dg.AssetKey]) -> list[dg.DagsterRun]:
    """Queued or running runs over any of these assets (a run that names no assets counts)."""
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=_IN_FLIGHT))
    return [run for run in runs if run.asset_selection is None or run.asset_selection & assets]


def _known_learners(instance: dg.DagsterInstance, segments: set[str]) -> list[str]:
    """The registered learners whose storage segments these are: looked up, not listed (listing every
    learner each tick would cost seconds at millions of learners)."""
    plain = [segment for segment in segments if not is_digest(segment)]
    known = list(instance.get_existing_dynamic_partitions(users.name, plain)) if plain else []
    if any(is_digest(segment) for segment in segments):
        known += [
            key for key in partition_order(instance, users.name).keys if storage_segment(key) in segments
        ]
    return sorted(set(known))


def _registered_learners(instance: dg.DagsterInstance, acting_on: list[str]) -> PartitionOrder:
    """The registered learners in partition order, read afresh when one of the learners a tick acts on has
    been deleted since the order was read (a run over a range must name registered keys, and a deleted
    learner found in a drop must be registered again)."""
    order = partition_order(instance, users.name)
    if confirmed(instance, users.name, [key for key in acting_on if key in order.members]):
        return order
    return partition_order(instance, users.name)


def _refresh(
    context: dg.SensorEvaluationContext,
    state: RefreshState,
    order: list[str],
    affected: list[str],
    max_span: int,
    assets: list[dg.AssetsDefinition],
    dynamic_partitions_requests=(),
) -> dg.SensorResult:
    """Ranged runs of `assets` over the affected learners that no queued or running run covers; those that
    one does wait in the cursor for a later tick."""
    busy = learners_in_flight(context.instance, order)
    spans = learner_spans(order, affected, max_span, max_span // 10, busy)
    waiting = sorted(set(affected) & busy)
    round_ = state.round + 1 if spans else state.round
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"{round_}:{first}:{last}",
                tags={PARTITION_RANGE_START: first, PARTITION_RANGE_END: last},
                # Named on the run, so the sensors (and the UI's run list) can tell what a run refreshes.
                asset_selection=[asset.key for asset in assets],
            )
            for first, last in spans
        ],
        dynamic_partitions_requests=list(dynamic_partitions_requests),
        cursor=RefreshState(state.seen, waiting, round_).dump(),
        skip_reason=None if spans else _nothing_to_refresh(affected),
    )


def _nothing_to_refresh(affected: list[str]) -> str:
    if not affected:
        return "the newly cleaned drops hold no learner's responses"
    return f"all {len(set(affected))} affected learner(s) are in runs already queued or running; they wait"


def learners_in_flight(instance: dg.DagsterInstance, order: list[str]) -> set[str]:
    """The learners that a queued or running run over per-learner assets covers (its partition, or its
    range of `order`), whoever launched it."""
    singles, spans = set(), []
    for run in _runs_in_flight(instance, _LEARNER_ASSETS):
        tags = run.tags
        if "dagster/partition" in tags:
            singles.add(tags["dagster/partition"])
        elif PARTITION_RANGE_START in tags and PARTITION_RANGE_END in tags:
            spans.append((tags[PARTITION_RANGE_START], tags[PARTITION_RANGE_END]))
    return (singles & set(order)) | keys_in_spans(order, spans)


def rebuild_engagement_table(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """Rebuilds the all-learner table (with its CSV export and report) after learners' phase features
    changed, once no per-learner run is in flight, so a drop refreshed in several runs rebuilds it once; at
    the latest TABLE_HOLD_SECONDS after the first change, so a day-long backfill still shows progress. It
    reads only what changed since its cursor (a storage id): its cost does not grow with the learners."""
    seen = int(context.cursor or 0)
    changed = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=phase_features.key, after_storage_id=seen), limit=1, ascending=True
    ).records
    if not changed:
        return dg.SkipReason("no learner's phase features changed")
    waited = time.time() - changed[0].timestamp
    busy = _runs_in_flight(context.instance, {*_LEARNER_ASSETS, phase_level_engagement.key})
    if busy and waited < TABLE_HOLD_SECONDS:
        return dg.SkipReason(f"waiting for {len(busy)} run(s) over learners' stages or the table")
    (latest,) = context.instance.fetch_materializations(phase_features.key, limit=1).records
    table = context.instance.fetch_materializations(phase_level_engagement.key, limit=1).records
    if table and table[0].storage_id > latest.storage_id:
        # Built since, by a run of its own (e.g. `engagement-demo`'s, before this sensor first looked).
        return dg.SensorResult(
            cursor=str(latest.storage_id), skip_reason="the table is newer than every change"
        )
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=f"table:{latest.storage_id}", asset_selection=[phase_level_engagement.key])
        ],
        cursor=str(latest.storage_id),
    )


def mark_dead_runs(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Marks failed the runs whose process was killed (the laptop profile's runs are processes on this
    machine; Dagster's default launcher cannot tell), so their learners are not held busy forever."""
    dead = fail_dead_runs(context.instance)
    if dead:
        context.log.warning(f"marked {len(dead)} run(s) failed whose process was gone: {dead[:5]}")
    return dg.SkipReason(f"{len(dead)} run(s) with a dead process marked failed" if dead else "no dead run")


def build_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    """The engagement group's sensors, looking as often as the settings say, and the automation sensor
    (which the conversation group's conditions need)."""
    every = settings.sensor_interval_seconds
    refresh_every = min(every, REFRESH_TICK_SECONDS)
    # The conversation group follows its parents by its automation conditions.
    automation = dg.AutomationConditionSensorDefinition(
        "downstream_automation",
        target=dg.AssetSelection.all(),
        default_status=_RUNNING,
        minimum_interval_seconds=every,
    )
    return [
        _sensor(
            "telemetry_drop_sensor",
            register_new_drops,
            [cleaned_telemetry],
            min(every, DROP_TICK_SECONDS),
            "landing",
        ),
        _sensor("learners_sensor", refresh_learners_of_drops, DROP_REFRESH, refresh_every, "warehouse"),
        _sensor(
            "sessions_sensor",
            partial(refresh_learners_of_sessions, learners_per_run=settings.learners_per_run),
            SESSIONS_REFRESH,
            every,
            "landing",
        ),
        _sensor("engagement_table_sensor", rebuild_engagement_table, [phase_level_engagement], refresh_every),
        automation,
        dg.SensorDefinition(
            "dead_runs_sensor",
            evaluation_fn=mark_dead_runs,
            minimum_interval_seconds=every,
            default_status=_RUNNING,
            description=mark_dead_runs.__doc__,
        ),
    ]


def _sensor(name: str, tick, targets: list[dg.AssetsDefinition], interval: int, *resources: str):
    """A sensor running `tick(context, *resources)`, described by the tick's docstring."""
    description = (tick.func if isinstance(tick, partial) else tick).__doc__

    @dg.sensor(
        name=name,
        target=[key for asset in targets for key in asset.keys],
        minimum_interval_seconds=interval,
        default_status=_RUNNING,
        description=description,
        required_resource_keys=set(resources),
    )
    def evaluate(context: dg.SensorEvaluationContext, **given):
        # Dagster hands the resources in as arguments when a sensor is called directly (tests), and on the
        # context when the daemon evaluates it.
        return tick(
            context, *(given[key] if key in given else getattr(context.resources, key) for key in resources)
        )

    return evaluate
