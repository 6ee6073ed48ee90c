/**
 * Internal detector constants. They are statistical design choices, not tuned per scenario:
 *
 * - The sequential test is a CUSUM of the log-likelihood ratio between two hypotheses about the
 *   relative shift of a signal: H0 "shift = INDIFFERENCE_LOW × threshold" against H1 "shift =
 *   threshold" (an SPRT indifference zone). Shifts below 75% of the threshold drift the
 *   statistic down, shifts at or above the threshold drift it up, with a speed proportional to
 *   the evidence (requests) per window: busy series decide in a few windows, quiet ones need more.
 * - LLR_THRESHOLD is the log of the tolerated odds (e^8 ≈ 3000:1 in favour of a break).
 * - Every window adds at most LLR_CAP_FRACTION of the threshold, so no single window (a spike)
 *   can page and a break needs at least MIN_PERSIST_WINDOWS windows of evidence.
 */
export const INDIFFERENCE_LOW = 0.75
export const LLR_THRESHOLD = 8
export const LLR_CAP_FRACTION = 1 / 3
export const MIN_PERSIST_WINDOWS = 3

/** Recent windows kept per key (bounded memory; change-point search and attribution look back this far). */
export const RING_SIZE = 128
/** A window joins the baseline only once it is this many windows old and no evidence is pending on it. */
export const ABSORB_DELAY_WINDOWS = 20

/** Cost-per-request baseline: exponentially weighted sums, half-life in windows. */
export const CPR_HALF_LIFE_WINDOWS = 240
/** Windows with requests, and requests, the baseline needs before the key may page. */
export const BASELINE_MIN_WINDOWS = 60
export const BASELINE_MIN_REQUESTS = 600
/** Overdispersion factor (variance of standardized residuals beyond iid requests), half-life in windows. */
export const DISPERSION_HALF_LIFE_WINDOWS = 240

/** Burn rate: level baseline before a day of history (wider tolerance) and a same-hour-of-day profile after. */
export const BURN_LEVEL_HALF_LIFE_WINDOWS = 60
/** Before a day of history the level cannot know the daily shape (it swings ±50% around its mean), so 3× the threshold. */
export const BURN_PRE_PROFILE_TOLERANCE = 3
/** Weight of the newest day when folding a day into the hour-of-day profile. */
export const PROFILE_DAY_WEIGHT = 0.5
export const PROFILE_BUCKETS = 24
/** Burn rate: half-life of the level factor (recent cost against the weekly/daily profile), in windows. */
export const LEVEL_RATIO_HALF_LIFE_WINDOWS = 360
/** A burn-rate break (volume-driven) must persist this long before it pages (short surges do not page). */
export const BURN_PERSIST_MS = 60 * 60_000
/**
 * Retry storms (key.ts, errorStorm): a CUSUM of the per-window log-likelihood ratio of the error
 * share being max(2 × baseline, baseline + ERROR_STORM_MIN_RISE) against the baseline share
 * (floored at ERROR_SHARE_FLOOR), each window capped at LLR_CAP_FRACTION of LLR_THRESHOLD like
 * every other CUSUM here (a one-minute burst of errors cannot page). Once it crosses, the cost per
 * successful call since the run began is compared with the baseline's: at least the threshold
 * higher pages cost per request with the error share as the driver.
 */
export const ERROR_STORM_MIN_RISE = 0.05
export const ERROR_SHARE_FLOOR = 0.005

/** Gaps longer than this are not filled with zero windows one by one (the key restarts its evidence). */
export const MAX_GAP_FILL_WINDOWS = 1440
/**
 * Team rollups are independent of how windows of different series interleave (the live
 * detector reads several partitions; a replay may run one partition hours ahead of another).
 * A team minute t is final once every member series has delivered a window at or after
 * t + TEAM_FINALIZE_LAG_WINDOWS (so "a member has an open cost-per-request alert" is read as of
 * that event time), or once the team's newest window is TEAM_MAX_SKEW_WINDOWS +
 * TEAM_FINALIZE_LAG_WINDOWS past it (a quiet or retired member holds the team back this long at
 * most). A series counts in its team's rollup from TEAM_MAX_SKEW_WINDOWS after its first window
 * (and after a gap of more than MEMBER_FORGET_WINDOWS): a team cannot wait for a series it has
 * not seen yet. The output is the same for any interleaving in which no series lags another of
 * its team by more than TEAM_MAX_SKEW_WINDOWS of event time.
 */
export const TEAM_FINALIZE_LAG_WINDOWS = 3
export const TEAM_MAX_SKEW_WINDOWS = 240
/**
 * Endpoint rollups (an endpoint across its models) wait this long at most for a quiet member: a
 * model retired by a release must not delay the page on the model it moved to by hours. The
 * price: their output is independent of delivery order only while the series of one endpoint lag
 * each other by less than this (their series usually share a producer and move together).
 */
export const ENDPOINT_MAX_SKEW_WINDOWS = 10
/**
 * A series silent this long in event time (with no open alert) leaves the detector, and an
 * endpoint rollup whose series all left goes with it: a series name that stops (a renamed
 * endpoint, a retired model, a flood of one-off names) frees its state. Over a week, so a series
 * that only serves on weekdays, or one day a week, keeps its weekly profile.
 */
export const IDLE_EVICT_MS = 8 * 24 * 3_600_000
/** A member series silent this long (its own last window vs the team's newest) is no longer waited for. */
export const MEMBER_FORGET_WINDOWS = 1440

/** Deployment attribution: candidates first seen from this long before the change point. */
export const ATTRIBUTION_LOOKBACK_MS = 30 * 60_000
export const ATTRIBUTION_TAU_MS = 5 * 60_000
/**
 * A deployment first seen before the look-back (a canary, a slow rolling deploy) is a candidate
 * when its share of requests rose across the change point by at least CANARY_MIN_RISE and to at
 * least CANARY_MIN_RATIO times its share before; it scores CANARY_WEIGHT × its rise: below a
 * deployment first seen at the change point that took the traffic, above one that took little of
 * it. The rise is absolute, so with several services behind one series a full rollout of one of
 * them moves its share by only that service's part of the traffic: a quarter, not a half.
 */
export const CANARY_MIN_RISE = 0.25
export const CANARY_MIN_RATIO = 2
export const CANARY_WEIGHT = 0.5
export const MAX_TRACKED_DEPLOYMENTS = 64
export const MAX_MARKERS_PER_TEAM = 256
export const MAX_DEPLOYMENT_IDS_IN_ALERT = 5

/** How far before the CUSUM start the maximum-likelihood change-point search looks. */
export const CHANGE_POINT_SEARCH_BACK = 15

/** Hours in a month, for monthly impact and budget even-spend rate. */
export const HOURS_PER_MONTH = 730

/**
 * Cost-per-request evidence (glr.ts). EVIDENCE_Z is the one-sided z the requests since a change
 * point must reach. One fixed change point would need z = 4 (the eval's evidence floor); the
 * test looks at ~50 correlated candidate change points in every window of every key (series,
 * endpoint, team), so it asks for z = 5 (a one-sided Gaussian tail of 2.9e-7: with ~10
 * effectively independent candidates per window, about one false alarm per key per 1,000 days of
 * one-minute windows; z = 4.5 tripled the eval's false pages), and upward evidence from few requests also pays the
 * skew correction (glr.ts). MAGNITUDE_FRACTION: the shift estimated since the change point must
 * be at least this share of the threshold (a shift well below the threshold is conclusive on a
 * busy series but is
 * not a break). WINDOW_Z_CAP winsorizes each window's deviation, so no single window (a spike,
 * one enormous request) can carry the evidence of MIN_PERSIST_WINDOWS windows.
 */
export const EVIDENCE_Z = 5
export const MAGNITUDE_FRACTION = 0.9
/**
 * ... and beyond the indifference level (INDIFFERENCE_LOW × threshold: 15% for the default 20%)
 * by MAGNITUDE_Z standard errors: one standard error, so a shift at the threshold is sized right
 * about as soon as it is conclusive, while a shift at the indifference level pays a one-sigma
 * excursion at every look.
 */
export const MAGNITUDE_Z = 1
export const WINDOW_Z_CAP = 4
/** Candidate change points: every window of the last DENSE_CANDIDATES, then 15% apart back to LOOKBACK_WINDOWS. */
export const DENSE_CANDIDATES = 30
export const LOOKBACK_WINDOWS = 480
/**
 * Baseline absorption: windows after the strongest candidate change point wait while its |z| is
 * at least HOLD_Z, but never longer than HOLD_MAX_MS, so a change that does not page becomes the
 * new normal instead of pinning the baseline.
 */
export const HOLD_Z = 2
export const HOLD_MAX_MS = 6 * 60 * 60_000
