//! Work spread over the machine's cores: [`map_with`] runs a function over a
//! slice on up to one thread per core (never more threads than items), each
//! thread taking the next item not yet taken with a state of its own, and gives
//! the results in the slice's order. Used where rendering dominates: the parse
//! phase and compiling the selected nodes.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The number of cores this process may use (1 when unknown).
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `f` applied to every item of `items` on at most `threads` threads, each with
/// a state made by `init`; the results in `items`' order, and each thread's
/// state. One thread (or one item) runs on the calling thread. A panic in `f`
/// is raised again on the calling thread.
pub(crate) fn map_with<T, S, R>(
    items: &[T],
    threads: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, &T) -> R + Sync,
) -> (Vec<R>, Vec<S>)
where
    T: Sync,
    S: Send,
    R: Send,
{
    let threads = threads.min(items.len()).max(1);
    let next = AtomicUsize::new(0);
    let work = || {
        let mut state = init();
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                break;
            };
            done.push((i, f(&mut state, item)));
        }
        (done, state)
    };
    let parts = if threads == 1 {
        vec![work()]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads).map(|_| scope.spawn(work)).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    };
    let mut slots: Vec<Option<R>> = Vec::new();
    slots.resize_with(items.len(), || None);
    let mut states = Vec::with_capacity(parts.len());
    for (done, state) in parts {
        for (i, r) in done {
            slots[i] = Some(r);
        }
        states.push(state);
    }
    (slots.into_iter().flatten().collect(), states)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_items_order_whatever_thread_made_them() {
        let items: Vec<u64> = (0..1000).collect();
        for threads in [1, 2, 7] {
            let (out, states) = map_with(
                &items,
                threads,
                || 0usize,
                |count, x| {
                    *count += 1;
                    x * x
                },
            );
            assert_eq!(out, items.iter().map(|x| x * x).collect::<Vec<_>>());
            assert_eq!(states.len(), threads);
            assert_eq!(states.iter().sum::<usize>(), items.len());
        }
    }

    #[test]
    fn no_more_threads_than_items() {
        let (out, states) = map_with(&["a"], 4, || (), |_, s| s.len());
        assert_eq!((out, states.len()), (vec![1], 1));
        let (out, states) = map_with(&[] as &[u8], 4, || (), |_, b| *b);
        assert_eq!((out.len(), states.len()), (0, 1));
    }
}
