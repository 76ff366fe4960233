//! Externally fed actors: the client runs outside the executor (a thread, a real process behind a
//! gRPC interposer) and its requests arrive over a [`Feed`].
//!
//! The protocol keeps the executor's rule that shared state changes only inside a step:
//! - the actor's future blocks (inside its poll) until the client has made its next request, or
//!   has finished, or `Feed::timeout` has passed. While it blocks, the actor is *busy*; since the
//!   executor polls one actor at a time and chooses only between polls, it chooses only when no
//!   actor is busy;
//! - the request is offered as a step with its label and footprint ([`Request::step`]), as far as
//!   the feed says it [`Reach`]es: a feed that cannot know the footprint in advance marks the
//!   offer [`Reach::Everything`], and the step then conflicts with everything (a sound
//!   over-approximation for partial-order reduction); a step that touches something its request
//!   does not say (a registry download the model has no request for) names it in its `Reach`;
//! - when the scheduler picks it, the request runs on the backend ([`Request::run`]), the answer
//!   goes back to the client, and the feed may complete the step's label with what only running
//!   it told ([`pushrace_harness::Sched::complete_label`]).
//!
//! A client that makes no request in time is a backend failure ([`BACKEND_FAILURE`]), reported
//! beside the verdict, never as one.

use super::footprint::ALL;
use super::{Answer, Exec, Request};
use pushrace_harness::{ActorError, Footprint, Key, Sched};
use pushrace_models::Error;
use std::time::Duration;

/// The kind of [`ActorError`] for a failure of the backend rather than of the client (a timeout, a
/// lost connection): `explore::verdict_of` reports it as another failure, not as a violation.
pub const BACKEND_FAILURE: &str = "backend";

/// What a step of an external client touches, for partial-order reduction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// What the request itself touches (its footprint, `footprint.rs`).
    Request,
    /// That, and this key written too (a manifest put by tag: it is then there by digest).
    Also(Key),
    /// These keys read and written, whatever the request is: a registry GET (the model's pull
    /// has no step for its downloads, so no request of the model says what one reads), a
    /// `Content.Write` whose digest its first message or its ref names before its commit (the
    /// feed checks afterwards that it wrote that digest).
    Keys { reads: Vec<Key>, writes: Vec<Key> },
    /// Not known from the request alone: everything.
    Everything,
}

/// What an external client did next.
#[derive(Debug)]
pub enum Next {
    /// It made a request and waits for the answer; `reach`: what its step touches.
    Request { request: Request, reach: Reach },
    /// It finished, with its program's result.
    Finished(Result<(), Error>),
}

/// The source of an external actor's requests.
pub trait Feed {
    /// Waits at most `timeout` for the client's next request (or its end); `Err` names what went
    /// wrong (timeout, the client vanished).
    fn next(&mut self, timeout: Duration) -> Result<Next, String>;

    /// Hands the answer to the client's pending request back, and returns what completes the
    /// step's label, if the feed learned something by running it (`None` otherwise).
    fn answer(&mut self, answer: Answer) -> Option<String>;

    /// Executes the request inside its step. By default on the backend; a feed whose client's
    /// calls reach a real store by themselves (an interposer) releases the held call here, waits
    /// for its end, applies what it turned out to be to `exec` (the shadow model that judges the
    /// invariants) and answers what the real store answered. `Err`: a backend failure.
    fn run(&mut self, request: &Request, exec: &dyn Exec) -> Result<Answer, String> {
        Ok(request.run(exec))
    }

    /// Whether a step's footprint may be narrowed to what running it did to `exec`
    /// ([`Exec::take_effect`]: which objects a GC removed). True when `exec` is where the
    /// request ran; a feed whose requests run elsewhere (a real daemon, with `exec` its shadow)
    /// says false, so its steps keep their declared footprints: what the model's GC removed is
    /// not taken as a proof of what the daemon's did.
    fn narrows(&self) -> bool {
        true
    }

    /// How long a client may take between two requests (default 10 s).
    fn timeout(&self) -> Duration {
        Duration::from_secs(10)
    }
}

/// Runs one external actor to its end: its requests stepped and executed on `exec` in the order
/// the scheduler picks. The outer `Err` is a backend failure; the inner result is the client's.
pub async fn run(
    sched: &Sched,
    exec: &dyn Exec,
    mut feed: Box<dyn Feed>,
) -> Result<Result<(), Error>, ActorError> {
    loop {
        let next = feed.next(feed.timeout());
        let next = next.map_err(|e| ActorError::new(BACKEND_FAILURE, e))?;
        match next {
            Next::Finished(r) => return Ok(r),
            Next::Request { request, reach } => {
                let narrowable = matches!(reach, Reach::Request) && feed.narrows();
                match reach {
                    Reach::Request => request.step(sched, None).await,
                    Reach::Also(key) => request.step(sched, Some(key)).await,
                    Reach::Keys { reads, writes } => {
                        sched.step(&request, Footprint::new(&reads, &writes)).await
                    }
                    Reach::Everything => {
                        let label = format_args!("{request} (footprint widened)");
                        sched.step(label, Footprint::write(&[ALL])).await;
                    }
                }
                let answer = feed.run(&request, exec);
                let answer = answer.map_err(|e| ActorError::new(BACKEND_FAILURE, e))?;
                let effect = exec.take_effect();
                if let (Some((reads, writes)), true) = (&effect, narrowable) {
                    sched.narrow(Footprint::new(reads, writes));
                }
                if let Some(text) = feed.answer(answer) {
                    sched.complete_label(text);
                }
            }
        }
    }
}
