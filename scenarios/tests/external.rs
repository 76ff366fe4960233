//! A fake external backend in one file, implementing one trait (`backend::external::Feed`): each
//! actor's program runs in a thread of its own, outside the executor, and reaches the scheduler
//! only through channels, as a real client process behind an interposer will. Explored and
//! replayed, it must behave exactly like the in-process model actors: the same violation at the
//! same shrunk schedule, the same trace hashes, the same number of executions.

use pushrace_harness::{Config, Explorer, Strategy, World};
use pushrace_models::program::{now_or_never, Call};
use pushrace_models::{Error, Op, Outcome};
use pushrace_scenarios::backend::external::{Feed, Next, Reach};
use pushrace_scenarios::backend::{spawn_scenario, Answer, Client, Driver, RepoObject, Request};
use pushrace_scenarios::explore::{self, initial_sim, run_actor, Options};
use pushrace_scenarios::library;
use pushrace_scenarios::scenario::Scenario;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::Duration;

/// The client's side: every request is sent out and blocks until the executor answers it. If the
/// executor is gone (the execution ended early), every request fails at once, so the program runs
/// to its end quickly and the thread exits.
struct ThreadClient {
    requests: Sender<Next>,
    answers: Receiver<Answer>,
}

impl ThreadClient {
    fn ask(&self, request: Request) -> Option<Answer> {
        let next = Next::Request {
            request,
            reach: Reach::Request,
        };
        self.requests.send(next).ok()?;
        self.answers.recv().ok()
    }
}

fn gone() -> Error {
    Error::raw(pushrace_models::ErrorKind::Unknown, "the executor is gone")
}

impl Call for ThreadClient {
    fn call(&self, op: Op) -> impl std::future::Future<Output = Result<Outcome, Error>> {
        let r = match self.ask(Request::Call(op)) {
            Some(Answer::Call(r)) => r,
            _ => Err(gone()),
        };
        std::future::ready(r)
    }
}

impl Client for ThreadClient {
    fn registry_has(&self, o: &RepoObject) -> impl std::future::Future<Output = bool> {
        let has = matches!(
            self.ask(Request::RegistryHas(o.clone())),
            Some(Answer::Yes(true))
        );
        std::future::ready(has)
    }

    fn registry_tagged(
        &self,
        tag: &RepoObject,
        digest: &str,
    ) -> impl std::future::Future<Output = bool> {
        let r = self.ask(Request::RegistryTagged(tag.clone(), digest.into()));
        std::future::ready(matches!(r, Some(Answer::Yes(true))))
    }

    fn registry_put(&self, o: &RepoObject) -> impl std::future::Future<Output = ()> {
        self.ask(Request::RegistryPut(o.clone()));
        std::future::ready(())
    }

    fn registry_put_tagged(
        &self,
        tag: &RepoObject,
        digest: &str,
    ) -> impl std::future::Future<Output = ()> {
        self.ask(Request::RegistryPutTagged(tag.clone(), digest.into()));
        std::future::ready(())
    }

    fn registry_mount(
        &self,
        o: &RepoObject,
        from: &str,
    ) -> impl std::future::Future<Output = bool> {
        let r = self.ask(Request::RegistryMount(o.clone(), from.into()));
        std::future::ready(matches!(r, Some(Answer::Yes(true))))
    }

    fn gc_tick(&self) -> impl std::future::Future<Output = bool> {
        std::future::ready(matches!(self.ask(Request::GcTick), Some(Answer::Yes(true))))
    }
}

/// The executor's side of one thread-played actor: the one trait a backend implements.
struct ThreadFeed {
    requests: Receiver<Next>,
    answers: Sender<Answer>,
}

impl ThreadFeed {
    /// Starts actor `i` of `s` in a thread of its own.
    fn start(s: &Scenario, i: usize) -> ThreadFeed {
        let (req_tx, req_rx) = channel();
        let (ans_tx, ans_rx) = channel();
        let s = s.clone();
        std::thread::spawn(move || {
            let client = ThreadClient {
                requests: req_tx,
                answers: ans_rx,
            };
            // Every await of a thread client is ready: the program runs to its end in one poll.
            let result = now_or_never(run_actor(&client, &s, &s.actors[i]));
            let _ = client.requests.send(Next::Finished(result));
        });
        ThreadFeed {
            requests: req_rx,
            answers: ans_tx,
        }
    }
}

impl Feed for ThreadFeed {
    fn next(&mut self, timeout: Duration) -> Result<Next, String> {
        self.requests
            .recv_timeout(timeout)
            .map_err(|e| format!("the client thread made no request: {e}"))
    }

    fn answer(&mut self, answer: Answer) -> Option<String> {
        let _ = self.answers.send(answer);
        None
    }
}

/// `s` with every actor played by a thread.
fn threaded(s: &Scenario) -> impl Fn(&mut World) {
    let scenario = Rc::new(s.clone());
    let template = initial_sim(s);
    move |w: &mut World| {
        let sim = Rc::new(RefCell::new(template.clone()));
        let feed = |i| Driver::External(Box::new(ThreadFeed::start(&scenario, i)));
        spawn_scenario(w, &scenario, &sim, feed);
    }
}

fn config(s: &Scenario) -> Config {
    Config {
        collect_hashes: true,
        ..Options::for_scenario(s).config()
    }
}

/// same-ref (nerdctl #855, v0.18): the thread-played actors find the same failure as the model
/// actors, after the same executions with the same trace hashes, shrink it to the same schedule,
/// and that schedule replays on either to the same trace.
#[test]
fn thread_played_actors_explore_and_replay_like_model_actors() {
    let s = library::load("same-ref").unwrap();
    let model = explore::model(&s);
    let external = threaded(&s);
    let on_model = Explorer::new(config(&s)).run(&model, Strategy::Dfs);
    let on_threads = Explorer::new(config(&s)).run(&external, Strategy::Dfs);
    assert!(!on_model.failures.is_empty(), "the model finds #855");
    assert_eq!(on_threads.executions, on_model.executions);
    assert_eq!(on_threads.hashes, on_model.hashes);
    let (m, t) = (&on_model.failures[0], &on_threads.failures[0]);
    assert_eq!(t.best_schedule(), m.best_schedule());
    assert_eq!(t.best_trace().hash, m.best_trace().hash);
    let schedule = m.best_schedule();
    let replayed = Explorer::default().replay(&external, schedule).unwrap();
    assert_eq!(replayed.trace.hash, m.best_trace().hash);
    assert!(replayed.failure.is_some());
}

/// Random and PCT too: the same seed gives the same executions on both backends.
#[test]
fn thread_played_actors_sample_like_model_actors() {
    let s = library::load("two-tags").unwrap();
    for strategy in [Strategy::Random, Strategy::Pct] {
        let cfg = Config {
            seed: 7,
            max_executions: Some(30),
            ..config(&s)
        };
        let a = Explorer::new(cfg.clone()).run(&explore::model(&s), strategy);
        let b = Explorer::new(cfg).run(&threaded(&s), strategy);
        assert_eq!(a.hashes, b.hashes, "{strategy}");
    }
}

/// A client that never makes a request is a backend failure after the feed's timeout, reported
/// beside the verdict, never as a violation.
#[test]
fn a_silent_external_client_is_a_backend_failure_not_a_violation() {
    struct Silent;
    impl Feed for Silent {
        fn next(&mut self, timeout: Duration) -> Result<Next, String> {
            std::thread::sleep(timeout);
            Err(format!("no request within {timeout:?}"))
        }
        fn answer(&mut self, _: Answer) -> Option<String> {
            None
        }
        fn timeout(&self) -> Duration {
            Duration::from_millis(20)
        }
    }
    let s = library::load("same-ref").unwrap();
    let scenario = Rc::new(s.clone());
    let template = initial_sim(&s);
    let model = move |w: &mut World| {
        let sim = Rc::new(RefCell::new(template.clone()));
        spawn_scenario(w, &scenario, &sim, |i| match i {
            0 => Driver::External(Box::new(Silent)),
            _ => Driver::Program,
        });
    };
    let report = Explorer::new(config(&s)).run(&model, Strategy::Dfs);
    let v = explore::verdict_of(&s, &Options::for_scenario(&s), report);
    assert!(v.violation.is_none(), "{:?}", v.violation);
    let other = v.other_failure.expect("a backend failure");
    assert!(other.contains("no request within 20ms"), "{other}");
}
