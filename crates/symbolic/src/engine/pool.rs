//! The symbols a job gives the model's scalars.
//!
//! Symbolica orders symbols, and its evaluator lays out its programs, by the
//! symbols' identities, which are handed out in the order the process first
//! asks for each name. A model's own names (`w`, `x`) would therefore mean
//! different symbols in a process that met them before (another model of
//! the same build script, another test) than in a fresh one, and its
//! derivation and its programs would come out in a different order, with
//! different last bits. So a job never uses a model name as a symbol: the
//! k-th distinct name the job asks for is the pool's k-th symbol, created
//! once per process, at the engine's start, in the same order in every
//! process. The same model gives the same symbols whatever ran before it.

use std::cell::RefCell;
use std::collections::HashMap;
use symbolica::atom::Symbol;
use symbolica::symbol;

/// Symbols made when the engine starts (about half a millisecond): more
/// than the scalar models and index-form bodies here ask for in one job.
/// A job that needs more makes them as it goes, and those, made at a point
/// that depends on what the process did before, carry no such promise.
const INITIAL: usize = 1024;

/// The pool's namespace, as Symbolica prints it before a symbol's name.
pub(crate) const NAMESPACE: &str = "hessforge_pool::";
/// The k-th symbol of the pool is `σk`: not a name a derivation file can
/// declare (those are ASCII).
pub(crate) const PREFIX: char = 'σ';

pub(crate) struct SymbolPool {
    symbols: RefCell<Vec<Symbol>>,
    /// Symbol → its place in `symbols`.
    place: RefCell<HashMap<Symbol, usize>>,
    /// This job's names, by place.
    names: RefCell<Vec<String>>,
    /// This job's name → place.
    by_name: RefCell<HashMap<String, usize>>,
}

impl SymbolPool {
    pub(crate) fn new() -> SymbolPool {
        let pool = SymbolPool {
            symbols: RefCell::new(Vec::with_capacity(INITIAL)),
            place: RefCell::new(HashMap::with_capacity(INITIAL)),
            names: RefCell::new(Vec::new()),
            by_name: RefCell::new(HashMap::new()),
        };
        for k in 0..INITIAL {
            pool.make(k);
        }
        pool
    }

    fn make(&self, k: usize) {
        let s = symbol!(&format!("{NAMESPACE}{PREFIX}{k}"));
        self.symbols.borrow_mut().push(s);
        self.place.borrow_mut().insert(s, k);
    }

    /// A new job: names mean nothing yet.
    pub(crate) fn begin_job(&self) {
        self.names.borrow_mut().clear();
        self.by_name.borrow_mut().clear();
    }

    /// The symbol of `name` in this job.
    pub(crate) fn symbol(&self, name: &str) -> Symbol {
        if let Some(&k) = self.by_name.borrow().get(name) {
            return self.symbols.borrow()[k];
        }
        let k = self.names.borrow().len();
        if k == self.symbols.borrow().len() {
            self.make(k);
        }
        self.names.borrow_mut().push(name.to_string());
        self.by_name.borrow_mut().insert(name.to_string(), k);
        self.symbols.borrow()[k]
    }

    /// The name the pool's k-th symbol stands for in this job.
    pub(crate) fn name_at(&self, k: usize) -> Option<String> {
        self.names.borrow().get(k).cloned()
    }

    /// The name a symbol of the pool stands for in this job.
    pub(crate) fn name(&self, s: Symbol) -> Option<String> {
        let k = *self.place.borrow().get(&s)?;
        self.names.borrow().get(k).cloned()
    }
}
