//! What a model run is made of: the steps (requests, clock advances, writes, purges, faults),
//! a small seeded PRNG that generates them, and their printing as Rust, so that a shrunk
//! counterexample can be pasted into a regression test as it is.

/// The site's resources; each path answers with fixed cache headers (see `system.rs` `answer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Res {
    /// `/p/a`: `public, max-age=2, stale-while-revalidate=4`, tag `ta`.
    PubSwr,
    /// `/p/b`: `max-age=3, stale-if-error=6`, tags `tb common` (not public: per-session for
    /// a request with a session).
    PrivSie,
    /// `/q/c`: `max-age=1`, tag `common`: no stale window, refetched behind the lock.
    Short,
    /// `/q/me`: `public, max-age=4, stale-while-revalidate=2`, `Vary: Cookie`, built from the
    /// session and the cookies.
    Me,
    /// `/p/lang`: `public, max-age=2`, `Vary: Accept-Language`, built from the language.
    Lang,
    /// `/p/nostore`: `no-store` (hit-for-pass).
    NoStore,
    /// `/q/private`: `private, max-age=60`, built from the session.
    Private,
    /// `/p/etag`: `public, max-age=1, stale-while-revalidate=3` with an `ETag` that changes
    /// only when the resource is written: stale copies are revalidated, and a `304` freshens
    /// the stored copy (§4.13).
    Validated,
}

pub const RESOURCES: [Res; 8] =
    [Res::PubSwr, Res::PrivSie, Res::Short, Res::Me, Res::Lang, Res::NoStore, Res::Private, Res::Validated];
pub const TAGS: [&str; 3] = ["ta", "tb", "common"];
pub const PREFIXES: [&str; 3] = ["/p/", "/q/", "/"];

impl Res {
    pub fn path(self) -> &'static str {
        match self {
            Res::PubSwr => "/p/a",
            Res::PrivSie => "/p/b",
            Res::Short => "/q/c",
            Res::Me => "/q/me",
            Res::Lang => "/p/lang",
            Res::NoStore => "/p/nostore",
            Res::Private => "/q/private",
            Res::Validated => "/p/etag",
        }
    }
}

/// One client request: which isolate receives it, for what, as whom (0 = anonymous, 1 and 2
/// = the two logged-in sessions), with which extra cookie (`pref=N`, 0 = none) and language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Req {
    pub isolate: u8,
    pub res: Res,
    pub who: u8,
    pub pref: u8,
    pub lang: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Tag(&'static str),
    Url(Res),
    Prefix(&'static str),
    Everything,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OriginMode {
    Healthy,
    /// Every answer is a `503` without freshness.
    Errors,
    /// No answer at all (the fetch fails: a 502, or a stale copy).
    Down,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// These requests, all in flight together; the origin takes `delay_ms` to answer each.
    Requests {
        reqs: Vec<Req>,
        delay_ms: u64,
    },
    /// The same, but request `i` starts `i * gap_ms` after the first: later ones arrive while
    /// earlier ones are at work (behind a lock, mid-fill).
    Staggered {
        reqs: Vec<Req>,
        delay_ms: u64,
        gap_ms: u64,
    },
    /// The clock moves on (a sleep: virtual on the memory store, real against Redis).
    Advance(u64),
    /// A `POST` to the resource's URL, answered 2xx (with `Edge-Purge-Tags` when `tag` is set).
    Write {
        isolate: u8,
        res: Res,
        tag: Option<&'static str>,
    },
    Purge {
        isolate: u8,
        target: Target,
        soft: bool,
    },
    /// These requests, and `after_ms` into them the purge, while fills are in flight (§8.1's
    /// known gap "fills in flight", which the model grants, except for a hard purge of
    /// everything, which the docs say is immune).
    PurgeMidway {
        reqs: Vec<Req>,
        delay_ms: u64,
        after_ms: u64,
        isolate: u8,
        target: Target,
        soft: bool,
    },
    /// Redis unreachable from every isolate (true) or back (false).
    RedisDown(bool),
    /// Redis failing one round trip in every `n` (0: never), whichever it is: a lookup, a
    /// lock, a poll, a store, a purge's batch. Failures in the middle of a request's work.
    RedisFlaky(u32),
    /// Redis answering one round trip in every `n` (0: never) with garbage after running it:
    /// alternately an answer that is not the protocol (`Malformed`, as the Upstash client
    /// reports one) and one whose every reply is a Redis error (`WRONGTYPE`, `OOM`).
    RedisGarbage(u32),
    Origin(OriginMode),
}

/// SplitMix64: small, seedable, and the same sequence on every platform.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize].clone()
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// How a run is shaped: how many isolates share the store, how far the clock may jump.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub isolates: u8,
    pub max_advance_ms: u64,
    pub max_delay_ms: u64,
}

fn random_req(rng: &mut Rng, shape: Shape, res: Res) -> Req {
    Req {
        isolate: rng.below(shape.isolates as u64) as u8,
        res,
        who: rng.below(3) as u8,
        pref: if rng.chance(30) { 1 + rng.below(2) as u8 } else { 0 },
        lang: rng.below(2) as u8,
    }
}

/// `count` steps from `seed`. Requests dominate; faults are rare and mostly short-lived
/// because the generator turns them off again soon.
pub fn generate(seed: u64, count: usize, shape: Shape) -> Vec<Step> {
    let mut rng = Rng::new(seed);
    let mut steps = Vec::with_capacity(count);
    let (mut redis_down, mut origin, mut flaky, mut garbage) = (false, OriginMode::Healthy, false, false);
    while steps.len() < count {
        let roll = rng.below(100);
        let step = if redis_down && rng.chance(40) {
            redis_down = false;
            Step::RedisDown(false)
        } else if flaky && rng.chance(25) {
            flaky = false;
            Step::RedisFlaky(0)
        } else if garbage && rng.chance(25) {
            garbage = false;
            Step::RedisGarbage(0)
        } else if origin != OriginMode::Healthy && rng.chance(35) {
            origin = OriginMode::Healthy;
            Step::Origin(origin)
        } else if roll < 24 {
            let res = rng.pick(&RESOURCES);
            Step::Requests { reqs: vec![random_req(&mut rng, shape, res)], delay_ms: 0 }
        } else if roll < 30 {
            let res = rng.pick(&RESOURCES);
            let n = 2 + rng.below(3) as usize;
            let reqs = (0..n).map(|_| random_req(&mut rng, shape, res)).collect();
            let delay_ms = 1 + rng.below(shape.max_delay_ms);
            Step::Staggered { reqs, delay_ms, gap_ms: 1 + rng.below(delay_ms) }
        } else if roll < 45 {
            // A burst on one resource: mostly the same variant, sometimes mixed.
            let res = rng.pick(&RESOURCES);
            let first = random_req(&mut rng, shape, res);
            let n = 2 + rng.below(5) as usize;
            let reqs = (0..n)
                .map(|_| {
                    if rng.chance(70) {
                        Req { isolate: rng.below(shape.isolates as u64) as u8, ..first }
                    } else {
                        random_req(&mut rng, shape, res)
                    }
                })
                .collect();
            Step::Requests { reqs, delay_ms: 1 + rng.below(shape.max_delay_ms) }
        } else if roll < 70 {
            Step::Advance(1 + rng.below(shape.max_advance_ms))
        } else if roll < 77 {
            let res = rng.pick(&RESOURCES);
            let tag = if rng.chance(30) { Some(rng.pick(&TAGS)) } else { None };
            Step::Write { isolate: rng.below(shape.isolates as u64) as u8, res, tag }
        } else if roll < 92 {
            let target = match rng.below(4) {
                0 => Target::Tag(rng.pick(&TAGS)),
                1 => Target::Url(rng.pick(&RESOURCES)),
                2 => Target::Prefix(rng.pick(&PREFIXES)),
                _ => Target::Everything,
            };
            let (isolate, soft) = (rng.below(shape.isolates as u64) as u8, rng.chance(50));
            if rng.chance(25) {
                let res = rng.pick(&RESOURCES);
                let reqs = (0..1 + rng.below(3)).map(|_| random_req(&mut rng, shape, res)).collect();
                let delay_ms = 1 + rng.below(shape.max_delay_ms);
                let after_ms = rng.below(delay_ms + 1);
                Step::PurgeMidway { reqs, delay_ms, after_ms, isolate, target, soft }
            } else {
                Step::Purge { isolate, target, soft }
            }
        } else if roll < 94 && !redis_down {
            redis_down = true;
            Step::RedisDown(true)
        } else if roll < 96 && !flaky {
            flaky = true;
            Step::RedisFlaky(2 + rng.below(6) as u32)
        } else if roll < 97 && !garbage {
            garbage = true;
            Step::RedisGarbage(2 + rng.below(6) as u32)
        } else {
            origin = if rng.chance(50) { OriginMode::Errors } else { OriginMode::Down };
            Step::Origin(origin)
        };
        steps.push(step);
    }
    steps
}

/// The steps as Rust, for a regression test: `vec![ ... ]`.
pub fn as_rust(steps: &[Step]) -> String {
    let mut out = String::from("vec![\n");
    for step in steps {
        let line = match step {
            Step::Requests { reqs, delay_ms } => {
                format!("Step::Requests {{ reqs: vec![{}], delay_ms: {delay_ms} }}", reqs_as_rust(reqs))
            }
            Step::Staggered { reqs, delay_ms, gap_ms } => format!(
                "Step::Staggered {{ reqs: vec![{}], delay_ms: {delay_ms}, gap_ms: {gap_ms} }}",
                reqs_as_rust(reqs)
            ),
            Step::Advance(ms) => format!("Step::Advance({ms})"),
            Step::Write { isolate, res, tag } => {
                format!("Step::Write {{ isolate: {isolate}, res: Res::{res:?}, tag: {tag:?} }}")
            }
            Step::Purge { isolate, target, soft } => {
                format!(
                    "Step::Purge {{ isolate: {isolate}, target: {}, soft: {soft} }}",
                    target_as_rust(target)
                )
            }
            Step::PurgeMidway { reqs, delay_ms, after_ms, isolate, target, soft } => format!(
                "Step::PurgeMidway {{ reqs: vec![{}], delay_ms: {delay_ms}, after_ms: {after_ms}, \
                 isolate: {isolate}, target: {}, soft: {soft} }}",
                reqs_as_rust(reqs),
                target_as_rust(target)
            ),
            Step::RedisDown(down) => format!("Step::RedisDown({down})"),
            Step::RedisFlaky(n) => format!("Step::RedisFlaky({n})"),
            Step::RedisGarbage(n) => format!("Step::RedisGarbage({n})"),
            Step::Origin(mode) => format!("Step::Origin(OriginMode::{mode:?})"),
        };
        out.push_str("    ");
        out.push_str(&line);
        out.push_str(",\n");
    }
    out.push(']');
    out
}

fn target_as_rust(target: &Target) -> String {
    match target {
        Target::Url(res) => format!("Target::Url(Res::{res:?})"),
        other => format!("Target::{other:?}"),
    }
}

fn reqs_as_rust(reqs: &[Req]) -> String {
    let reqs: Vec<String> = reqs
        .iter()
        .map(|r| {
            format!(
                "Req {{ isolate: {}, res: Res::{:?}, who: {}, pref: {}, lang: {} }}",
                r.isolate, r.res, r.who, r.pref, r.lang
            )
        })
        .collect();
    reqs.join(", ")
}
