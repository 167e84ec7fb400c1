//! The reference model: what the origin produced (every fetch, numbered), which invalidations
//! completed and when, and the rules a served response must obey, each one a guarantee of
//! docs §8 with its stated exceptions. It never predicts a response; it judges the one given.

use edge_core::CachePhase;

use super::steps::{Req, Res, Target};

/// One origin fetch, as the origin saw it. Its number is in the body it answered.
#[derive(Clone, Debug)]
pub struct Fetch {
    pub res: Res,
    /// The request that caused it (a background refresh carries its trigger's id).
    pub req_id: u64,
    /// 0 anonymous, 1 or 2 the session the origin was told, 9 "unavailable".
    pub who: u8,
    /// The isolate whose request caused it.
    pub isolate: u8,
    pub pref: u8,
    pub lang: u8,
    pub start_event: u64,
    /// When the origin answered (its body left); the copy is stored at or after this.
    pub end_ms: Option<u64>,
    pub end_event: Option<u64>,
    /// Subject to the lock (§8.3): a shared answer fetched while Redis answers.
    pub lockable: bool,
    /// A revalidation the origin answered `304`: it confirmed this earlier fetch's copy.
    pub confirms: Option<u64>,
}

/// The origin's latest word on a copy: the fetch that produced it or a `304` that confirmed it.
#[derive(Clone, Copy, Debug)]
pub struct Vouched {
    pub start_event: u64,
    pub end_event: u64,
    pub end_ms: u64,
}

/// A completed purge or write invalidation.
#[derive(Clone, Debug)]
pub struct Invalidation {
    pub target: Target,
    /// Extra tags of a write (`Edge-Purge-Tags`).
    pub tags: Vec<&'static str>,
    pub soft: bool,
    pub isolate: u8,
    pub started_event: u64,
    pub completed_event: u64,
    pub completed_ms: u64,
}

/// One response, as the client got it.
#[derive(Clone, Debug)]
pub struct Observed {
    pub req: Req,
    pub req_id: u64,
    pub start_event: u64,
    /// When the response was complete: a `304` before it vouches for what it served.
    pub end_event: u64,
    pub start_ms: u64,
    pub status: u16,
    pub phase: CachePhase,
    pub detail: String,
    /// The fetch number in the body, if the body is one of the origin's.
    pub serial: Option<u64>,
    pub redis_down: bool,
    /// When Redis went down, while it is.
    pub redis_down_since_ms: Option<u64>,
    /// Redis failed a round trip while the request ran (or was down, or is a real Redis that
    /// may time out on a busy machine): the request may have been answered in degraded mode.
    pub redis_failed: bool,
    pub origin_healthy: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which guarantee; shrinking keeps a counterexample only while the same one fails.
    pub kind: &'static str,
    pub message: String,
}

/// Freshness windows in seconds, as the origin states them for each resource.
pub struct Windows {
    pub ttl: u64,
    pub swr: u64,
    pub sie: u64,
}

pub fn windows(res: Res) -> Windows {
    match res {
        Res::PubSwr => Windows { ttl: 2, swr: 4, sie: 0 },
        Res::PrivSie => Windows { ttl: 3, swr: 0, sie: 6 },
        Res::Short => Windows { ttl: 1, swr: 0, sie: 0 },
        Res::Me => Windows { ttl: 4, swr: 2, sie: 0 },
        Res::Lang => Windows { ttl: 2, swr: 0, sie: 0 },
        Res::NoStore | Res::Private => Windows { ttl: 0, swr: 0, sie: 0 },
        Res::Validated => Windows { ttl: 1, swr: 3, sie: 0 },
    }
}

pub fn tags(res: Res) -> &'static [&'static str] {
    match res {
        Res::PubSwr => &["ta"],
        Res::PrivSie => &["tb", "common"],
        Res::Short => &["common"],
        Res::Validated => &["tb"],
        _ => &[],
    }
}

/// Whether the origin's answer may be shared at all: `public` (or `s-maxage`) answers are,
/// others only when built for no session (§2.2 `per-session`).
pub fn shared_for(res: Res, who: u8) -> bool {
    match res {
        Res::PubSwr | Res::Me | Res::Lang | Res::Validated => true,
        Res::PrivSie | Res::Short => who == 0,
        Res::NoStore | Res::Private => false,
    }
}

pub struct Model {
    pub fetches: Vec<Fetch>,
    pub invalidations: Vec<Invalidation>,
    pub event: u64,
    /// Slack on the freshness windows: the copy is stored a little after the origin answered
    /// (0 on the memory store's virtual clock; a few ms of round trips against Redis).
    pub slack_ms: u64,
    /// `CACHE_L1_TTL_MS` when the per-isolate L1 is on (§4.15), `None` when it is off: then no
    /// L1 exception is granted at all.
    pub l1_ttl_ms: Option<u64>,
}

impl Model {
    pub fn new(slack_ms: u64) -> Self {
        Model { fetches: Vec::new(), invalidations: Vec::new(), event: 0, slack_ms, l1_ttl_ms: None }
    }

    pub fn tick(&mut self) -> u64 {
        self.event += 1;
        self.event
    }

    /// Judges one response against every guarantee that applies to it.
    pub fn check(&self, obs: &Observed) -> Result<(), Violation> {
        let fail = |kind, message: String| Err(Violation { kind, message });
        if obs.origin_healthy && obs.status >= 500 {
            return fail("no-5xx", format!("a healthy origin, yet {} for {obs:?}", obs.status));
        }
        // Degraded mode (§4.17, §8.6): the origin's answer, its isolate's one fetch of the key
        // (`Collapsed`), or with the L1 on a copy from it; marked as such (or the origin's own
        // failure). Checked whenever the edge says so, and required while Redis is down.
        let marked =
            obs.detail == "redis-unavailable" || (!obs.origin_healthy && obs.detail == "origin-error");
        // An L1 hit asks nothing of Redis, so it is not marked (judged below, with its copy).
        let l1_hit = obs.phase == CachePhase::Hit && self.l1_ttl_ms.is_some();
        if obs.redis_down && !marked && !l1_hit {
            return fail("redis-down", format!("not marked as answered without Redis: {obs:?}"));
        }
        let degraded = obs.detail == "redis-unavailable";
        if degraded && !obs.redis_failed {
            return fail("redis-down", format!("marked redis-unavailable, yet Redis never failed: {obs:?}"));
        }
        if (degraded || obs.redis_down) && from_cache(obs.phase) && self.l1_ttl_ms.is_none() {
            return fail("redis-down", format!("served from the cache without Redis, L1 off: {obs:?}"));
        }
        let Some(serial) = obs.serial else {
            // Only the edge's own 502/504 carry no origin body.
            if obs.origin_healthy || !matches!(obs.status, 502 | 504) {
                return fail("body", format!("a body the origin never sent: {obs:?}"));
            }
            return Ok(());
        };
        let Some(fetch) = self.fetches.get(serial as usize) else {
            return fail("body", format!("fetch #{serial} never happened: {obs:?}"));
        };
        if fetch.res != obs.req.res {
            return fail("crossed-url", format!("{obs:?} got {fetch:?}"));
        }
        // A copy revalidated for this very request: the origin vouched for it just now.
        let vouched_now = obs.phase == CachePhase::Revalidated
            && self.fetches.iter().any(|f| f.confirms == Some(serial) && f.req_id == obs.req_id);
        if obs.phase == CachePhase::Revalidated && !vouched_now {
            return Err(Violation {
                kind: "body",
                message: format!("{obs:?}: revalidated, but no 304 said so"),
            });
        }
        let own = fetch.req_id == obs.req_id || vouched_now;
        // Only shared copies are in the L1: never a `Vary: Cookie` variant or a session's own.
        let without_redis = (degraded || obs.redis_down) && from_cache(obs.phase);
        if without_redis && !own && !in_l1(fetch) {
            return fail("redis-down", format!("{obs:?}: {fetch:?} served without Redis is never in the L1"));
        }
        if !own {
            self.check_variant(obs, fetch)?;
            let origin = self.last_confirmed(serial, fetch, obs.end_event);
            // An unmarked L1 HIT while Redis is down: within `CACHE_L1_TTL_MS` of the outage's
            // start or of the copy's arrival from the origin (a degraded fetch puts it there).
            if obs.redis_down && !marked {
                let since = obs.redis_down_since_ms.unwrap_or(0).max(origin.map_or(0, |v| v.end_ms));
                if obs.start_ms > since + self.l1_ttl_ms.unwrap_or(0) {
                    return fail("redis-down", format!("an L1 hit past its lifetime, Redis down: {obs:?}"));
                }
            }
            self.check_invalidations(obs, fetch, origin)?;
            self.check_windows(obs, fetch, origin)?;
        }
        Ok(())
    }

    /// When the origin last vouched for fetch `serial`'s copy before `before_event`: its own
    /// answer, or a later `304` to a revalidation of it.
    fn last_confirmed(&self, serial: u64, fetch: &Fetch, before_event: u64) -> Option<Vouched> {
        let vouched = |f: &Fetch| {
            Some(Vouched { start_event: f.start_event, end_event: f.end_event?, end_ms: f.end_ms? })
        };
        let confirmations =
            self.fetches.iter().filter(|f| f.confirms == Some(serial) && f.start_event < before_event);
        confirmations.filter_map(vouched).chain(vouched(fetch)).max_by_key(|v| v.start_event)
    }

    /// §8.5: a variant built for one session or set of cookies goes to no other.
    fn check_variant(&self, obs: &Observed, fetch: &Fetch) -> Result<(), Violation> {
        let req = obs.req;
        let crossed = match req.res {
            Res::Me => fetch.who != req.who || fetch.pref != req.pref,
            Res::Lang => fetch.lang != req.lang,
            Res::PrivSie | Res::Short => fetch.who != 0 && fetch.who != req.who,
            Res::NoStore | Res::Private => true,
            Res::PubSwr | Res::Validated => false,
        };
        if crossed {
            return Err(Violation {
                kind: "crossed-variant",
                message: format!("{obs:?} was served {fetch:?}, built for another client"),
            });
        }
        Ok(())
    }

    /// §8.1 and §8.2: nothing a completed hard purge removed; soft-purged copies only stale.
    fn check_invalidations(
        &self,
        obs: &Observed,
        fetch: &Fetch,
        origin: Option<Vouched>,
    ) -> Result<(), Violation> {
        let confirmed_event = origin.map_or(fetch.start_event, |v| v.start_event);
        for inv in &self.invalidations {
            let applies = inv.completed_event < obs.start_event
                && confirmed_event < inv.started_event
                && covers(inv, fetch.res);
            if !applies {
                continue;
            }
            // §8.1's known gap: a fill or refresh (a 304 included) whose fetch began before the
            // purge and answered after it began stores after it. A hard purge of everything is
            // immune (a new version).
            let in_flight = origin.is_some_and(|v| v.end_event > inv.started_event);
            let immune = !inv.soft && inv.target == Target::Everything;
            if in_flight && !immune {
                continue;
            }
            if self.excused_by_l1(obs, inv) {
                continue;
            }
            if !inv.soft {
                return Err(Violation {
                    kind: "served-after-hard-purge",
                    message: format!("{obs:?} was served {fetch:?}, removed by {inv:?}"),
                });
            }
            if !matches!(obs.phase, CachePhase::Stale | CachePhase::StaleIfError) {
                return Err(Violation {
                    kind: "soft-purged-served-fresh",
                    message: format!("{obs:?} was served {fetch:?} as fresh after {inv:?}"),
                });
            }
        }
        Ok(())
    }

    /// §8.1's exception: another isolate's L1 may serve a purged copy (hard or soft) for at
    /// most `CACHE_L1_TTL_MS` after the purge completed; §8.6's: in degraded mode, another
    /// isolate's L1 copy of a purge it had not seen (whatever its age; the windows still hold).
    /// The isolate that made the purge or write is never excused: it dropped its copies at once.
    fn excused_by_l1(&self, obs: &Observed, inv: &Invalidation) -> bool {
        let Some(ttl) = self.l1_ttl_ms else { return false };
        if obs.req.isolate == inv.isolate || !from_cache(obs.phase) {
            return false;
        }
        let degraded = obs.detail == "redis-unavailable" && obs.redis_failed;
        degraded || obs.start_ms <= inv.completed_ms + ttl
    }

    /// §8.2, §4.4, §4.8: fresh only within `ttl`, stale only within `ttl + swr` (served at
    /// once) or `ttl + sie` (instead of an origin error).
    fn check_windows(&self, obs: &Observed, fetch: &Fetch, origin: Option<Vouched>) -> Result<(), Violation> {
        let Some(Vouched { end_ms, .. }) = origin else {
            return Err(Violation {
                kind: "body",
                message: format!("{obs:?} was served {fetch:?} before the origin finished it"),
            });
        };
        let w = windows(fetch.res);
        let age_ms = obs.start_ms.saturating_sub(end_ms);
        let limit_s = match obs.phase {
            CachePhase::Hit => w.ttl,
            CachePhase::Stale => w.ttl + w.swr,
            CachePhase::StaleIfError => w.ttl + w.sie,
            // A waiter is served what its holder stored while it waited; a revalidated copy
            // was just confirmed by the origin.
            _ => return Ok(()),
        };
        if age_ms > limit_s * 1000 + self.slack_ms {
            return Err(Violation {
                kind: "outside-window",
                message: format!("{obs:?} was served {fetch:?} at age {age_ms} ms, window {limit_s} s"),
            });
        }
        Ok(())
    }
}

/// A copy from the cache rather than the origin (a waiter's result is its holder's fetch).
fn from_cache(phase: CachePhase) -> bool {
    phase.served_from_cache() && phase != CachePhase::Collapsed
}

/// Whether a fetch's copy may be in an isolate's L1 (§4.15): a shared answer, not keyed on
/// `Cookie` (`/q/me`), not built for a session the store could not check.
pub fn in_l1(fetch: &Fetch) -> bool {
    fetch.res != Res::Me && fetch.who != 9 && shared_for(fetch.res, fetch.who)
}

/// Whether `inv` names `res` (its URL, its path's prefix, one of its tags, or everything).
pub fn covers(inv: &Invalidation, res: Res) -> bool {
    let by_target = match &inv.target {
        Target::Everything => true,
        Target::Url(r) => *r == res,
        Target::Prefix(p) => res.path().starts_with(p),
        Target::Tag(t) => tags(res).contains(t),
    };
    by_target || inv.tags.iter().any(|t| tags(res).contains(t))
}
