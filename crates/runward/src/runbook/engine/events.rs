//! Following one run's events in order, for progress displays and binding callbacks.

use super::Engine;
use crate::Result;
use crate::store::{Event, RunId, Store};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::broadcast::{self, error::RecvError};

/// One run's events in `seq` order, each once: taken from the engine's broadcast as they are
/// appended, and read from the store for any the broadcast missed (a lagging receiver, writes
/// by another process). Made by [`Engine::follow`] before the run is driven.
pub struct RunEvents {
    rx: broadcast::Receiver<Event>,
    store: Arc<dyn Store>,
    run: RunId,
    last: u64,
    pending: VecDeque<Event>,
}

impl Engine {
    /// Follows run `id`'s events after sequence number `after`, or, with `None`, those
    /// appended from now on. Call it before driving the run so nothing is missed.
    pub async fn follow(&self, id: &RunId, after: Option<u64>) -> Result<RunEvents> {
        let rx = self.subscribe();
        let store = self.store().clone();
        let last = match after {
            Some(seq) => seq,
            None => store.list_events(id, 0).await?.last().map_or(0, |e| e.seq),
        };
        Ok(RunEvents {
            rx,
            store,
            run: id.clone(),
            last,
            pending: VecDeque::new(),
        })
    }
}

impl RunEvents {
    /// The next event, waiting until it is appended. Cancel-safe: an event is consumed only
    /// when it is returned.
    pub async fn next(&mut self) -> Result<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                if event.seq > self.last {
                    self.last = event.seq;
                    return Ok(event);
                }
                continue;
            }
            match self.rx.recv().await {
                Ok(event) if event.run_id == self.run && event.seq == self.last + 1 => {
                    self.last = event.seq;
                    return Ok(event);
                }
                Ok(event) if event.run_id == self.run && event.seq > self.last => {
                    self.pending = self.store.list_events(&self.run, self.last).await?.into();
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    self.pending = self.store.list_events(&self.run, self.last).await?.into();
                }
                // The engine holds the sender as long as anything can append.
                Err(RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    }

    /// Every event stored after the last one returned, without waiting; call it once the
    /// drive is over to deliver the tail.
    pub async fn rest(&mut self) -> Result<Vec<Event>> {
        let mut out: Vec<Event> = self
            .pending
            .drain(..)
            .filter(|e| e.seq > self.last)
            .collect();
        if let Some(last) = out.last() {
            self.last = last.seq;
        }
        let stored = self.store.list_events(&self.run, self.last).await?;
        if let Some(last) = stored.last() {
            self.last = last.seq;
        }
        out.extend(stored);
        Ok(out)
    }

    /// The sequence number of the last event returned.
    pub fn last_seq(&self) -> u64 {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::Runbook;
    use crate::runbook::engine::Resume;
    use crate::store::SqliteStore;
    use std::collections::BTreeMap;

    #[tokio::test]
    async fn follows_one_run_in_order_across_a_lagging_receiver() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().await.unwrap());
        let engine = Engine::builder(store.clone()).build();
        let mut text = String::from("[runbook]\nname = \"many\"\n");
        for i in 0..700 {
            text.push_str(&format!(
                "[[steps]]\nid = \"s{i}\"\nkind = \"sleep\"\nduration = \"0s\"\n"
            ));
        }
        let rb = Runbook::parse(&text, None).unwrap();
        let other = engine.create(&rb, &BTreeMap::new(), None).await.unwrap();
        let run = engine.create(&rb, &BTreeMap::new(), None).await.unwrap();
        let mut follow = engine.follow(&run.id, Some(0)).await.unwrap();
        // More events than the broadcast keeps (1024), plus another run's events in between.
        engine
            .resume(&other.id, &rb, Resume::default())
            .await
            .unwrap();
        engine
            .resume(&run.id, &rb, Resume::default())
            .await
            .unwrap();
        let mut seqs = Vec::new();
        let total = store.list_events(&run.id, 0).await.unwrap().len() as u64;
        while seqs.len() < 5 {
            let event = follow.next().await.unwrap();
            assert_eq!(event.run_id, run.id);
            seqs.push(event.seq);
        }
        let rest = follow.rest().await.unwrap();
        seqs.extend(rest.iter().map(|e| e.seq));
        assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
        assert_eq!(follow.last_seq(), total);
        assert!(follow.rest().await.unwrap().is_empty());
    }
}
