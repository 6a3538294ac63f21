//! Symbolica allows one thread per user; the crate funnels every call
//! through one worker. Calling it from many threads at once must be safe
//! and give the same results as calling it from one.

use crate::common;
use hessforge_derivation::render::{Format, render};
use hessforge_symbolic::derive;

#[test]
fn many_threads_at_once() {
    let models = common::builtins();
    let reference: Vec<String> = models
        .iter()
        .map(|m| render(&derive(m).unwrap(), Format::Text))
        .collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let models = &models;
                s.spawn(move || {
                    (0..models.len())
                        .map(|i| {
                            let m = &models[(i + t) % models.len()];
                            (
                                (i + t) % models.len(),
                                render(&derive(m).unwrap(), Format::Text),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            for (i, text) in h.join().unwrap() {
                assert_eq!(
                    text, reference[i],
                    "{} differs when derived concurrently",
                    models[i].name
                );
            }
        }
    });
}
