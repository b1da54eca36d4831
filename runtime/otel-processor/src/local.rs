//! Shaping on the application's own threads: each thread that logs gets its
//! own engines for the programs' shaping rules (made on its first record,
//! kept in a thread-local), so the verdict on a record costs no trip to
//! another thread. This is sound without `unsafe`: an engine never leaves
//! the thread that made it. It gives the same answers as one shared engine
//! because the shaping rules it runs keep no state ([`crate::chain`]).
//!
//! A thread's engines go when the thread ends, or when the thread next
//! makes engines for a processor after the one they belong to was dropped.

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use dtc_engine::Options;
use dtc_ir::Program;

use crate::chain::Loaded;

/// What a thread needs to make its engines.
pub(crate) struct Shapers {
    /// The shaping part of each program, in order.
    pub programs: Vec<Program>,
    pub options: Options,
}

impl Shapers {
    fn load(&self) -> Vec<Loaded> {
        let load = |p: &Program| Loaded {
            shaping_only: true,
            ..Loaded::new(p.clone(), &self.options)
        };
        self.programs.iter().map(load).collect()
    }
}

type Kept = Vec<(Weak<Shapers>, Vec<Loaded>)>;

thread_local! {
    static KEPT: RefCell<Kept> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's engines for `shapers`. The engines are taken
/// out of the thread-local while `f` runs and put back after, so nothing is
/// borrowed across `f`. Where the thread-local cannot give them (the thread
/// is ending, or a call is already using them), `f` gets engines made for
/// this call alone: slower, same answer.
pub(crate) fn with_engines<R>(shapers: &Arc<Shapers>, f: impl FnOnce(&mut [Loaded]) -> R) -> R {
    let mine =
        |(w, _): &(Weak<Shapers>, Vec<Loaded>)| std::ptr::eq(w.as_ptr(), Arc::as_ptr(shapers));
    let taken = KEPT
        .try_with(|kept| {
            let mut kept = kept.try_borrow_mut().ok()?;
            let at = match kept.iter().position(mine) {
                Some(at) => at,
                None => {
                    kept.retain(|(w, _)| w.strong_count() > 0);
                    kept.push((Arc::downgrade(shapers), Vec::new()));
                    kept.len() - 1
                }
            };
            Some(std::mem::take(&mut kept[at].1))
        })
        .ok()
        .flatten()
        .filter(|engines| !engines.is_empty());
    let mut engines = taken.unwrap_or_else(|| shapers.load());
    let result = f(&mut engines);
    let _ = KEPT.try_with(|kept| {
        if let Ok(mut kept) = kept.try_borrow_mut()
            && let Some(entry) = kept.iter_mut().find(|e| mine(e))
        {
            entry.1 = engines;
        }
    });
    result
}
