//! The scheduled gate: a call that is a step is held until the scheduler picks it.
//!
//! Rules (README.md "Real clients" states them for users):
//! - a step-class call is held and told to its actor's feed ([`Event::Held`]); the feed releases
//!   it when the scheduler picks its step ([`HoldGate::open`] then `Admit::Forward`);
//! - a `Content.Write` stream is one step from its first message to its end, and until its
//!   client learns the outcome further step-class calls of the same actor are forwarded at once,
//!   inside the step ([`Event::Inner`]): a pull's fetch downloads the blob while its writer is
//!   open (and a layer conversion reads while it writes). The outcome is the answer to the
//!   commit, or the answer's end (an open refused with AlreadyExists); the forwarder tells the
//!   gate before passing it on ([`Gate::settled`]). From then on what the client calls is a step
//!   of its own, held like any call, even when it arrives before the interposer has seen the
//!   stream end (nesting it would depend on that timing). During any other step
//!   (one unary call, or one Read stream to its trailers or the client's cancel) the actor's other
//!   calls are held like any call: a client with calls in flight at once (the converter walks an
//!   index's children concurrently) gets one step per call, offered in arrival order;
//! - pass-through calls, and `Content.ListStatuses` (ctr polls it every 100 ms for its progress
//!   display only, so how often it is called depends on time and nothing it answers reaches a
//!   verdict), are forwarded at once and never reach the feed;
//! - an unsupported call is refused (UNIMPLEMENTED) and reported ([`Event::Refused`]): the
//!   execution then fails as a backend failure, never silently out of order.

use super::decode::{is_write, scheduled as step_class};
use super::{Admit, CallInfo, Class, Ended, Gate};
use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use tokio::sync::oneshot;

/// What the gate tells one actor's feed.
#[derive(Debug)]
pub enum Event {
    /// A call waits for the scheduler; forward it with `admit`.
    Held {
        call: CallInfo,
        admit: oneshot::Sender<Admit>,
    },
    /// A call forwarded inside the actor's open step.
    Inner(CallInfo),
    /// A held or inner call ended.
    Ended(CallInfo, Box<Ended>),
    /// A call the model does not know was refused.
    Refused(CallInfo),
    /// A client connection failed outside any call.
    ConnectionError(String),
}

#[derive(Default)]
struct Actor {
    tx: Option<Sender<Event>>,
    /// The seq of the call whose step is open, and whether calls nest inside it (a Write until
    /// its outcome is passed on).
    open: Option<u64>,
    nest: bool,
}

/// Holds each actor's step-class calls for its feed.
#[derive(Default)]
pub struct HoldGate {
    actors: Mutex<HashMap<String, Actor>>,
}

/// Whether a call reaches the feed at all (see the module's rules).
fn scheduled(call: &CallInfo) -> bool {
    step_class(call.decoded.class, &call.method)
}

impl HoldGate {
    /// Registers an actor; its events arrive on the receiver.
    pub fn actor(&self, name: &str) -> Receiver<Event> {
        let (tx, rx) = channel();
        let mut actors = self.actors.lock().unwrap_or_else(|p| p.into_inner());
        actors.entry(name.to_string()).or_default().tx = Some(tx);
        rx
    }

    /// Opens `actor`'s step for the held call (call before releasing it).
    pub fn open(&self, actor: &str, call: &CallInfo) {
        let nest = is_write(&call.method);
        self.with(actor, |a| (a.open, a.nest) = (Some(call.seq), nest));
    }

    /// Closes `actor`'s step.
    pub fn close(&self, actor: &str) {
        self.with(actor, |a| a.open = None);
    }

    fn with<T>(&self, actor: &str, f: impl FnOnce(&mut Actor) -> T) -> T {
        let mut actors = self.actors.lock().unwrap_or_else(|p| p.into_inner());
        f(actors.entry(actor.to_string()).or_default())
    }

    fn send(a: &Actor, e: Event) {
        if let Some(tx) = &a.tx {
            let _ = tx.send(e);
        }
    }
}

impl Gate for HoldGate {
    fn arrive(&self, call: &CallInfo) -> Option<oneshot::Receiver<Admit>> {
        if call.decoded.class == Class::Unsupported {
            let (tx, rx) = oneshot::channel();
            let why = format!("pushrace: {} is not modelled", call.method);
            let _ = tx.send(Admit::Refuse(why));
            self.with(&call.actor, |a| Self::send(a, Event::Refused(call.clone())));
            return Some(rx);
        }
        if !scheduled(call) {
            return None;
        }
        self.with(&call.actor, |a| {
            if a.open.is_some() && a.nest {
                Self::send(a, Event::Inner(call.clone()));
                return None;
            }
            let (tx, rx) = oneshot::channel();
            let held = Event::Held {
                call: call.clone(),
                admit: tx,
            };
            Self::send(a, held);
            Some(rx)
        })
    }

    fn end(&self, call: &CallInfo, ended: &Ended) {
        if scheduled(call) {
            let e = Event::Ended(call.clone(), Box::new(ended.clone()));
            self.with(&call.actor, |a| Self::send(a, e));
        }
    }

    fn settled(&self, call: &CallInfo) {
        self.with(&call.actor, |a| {
            if a.open == Some(call.seq) {
                a.nest = false;
            }
        });
    }

    fn connection_error(&self, actor: &str, _: Option<u32>, error: &str) {
        let e = Event::ConnectionError(error.to_string());
        self.with(actor, |a| Self::send(a, e));
    }
}
