//! Per-key async mutual exclusion: one holder per key, waiters queue with a deadline.
//! Used for in-flight request ids (a duplicate waits for the first) and for orders (two
//! requests never merge into the same stored version).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

pub struct KeyedLocks<K: Eq + Hash + Clone> {
    map: Arc<Mutex<HashMap<K, Arc<AsyncMutex<()>>>>>,
}

impl<K: Eq + Hash + Clone> Default for KeyedLocks<K> {
    fn default() -> Self {
        KeyedLocks {
            map: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

/// Holds a key until dropped; the key's entry goes away with its last user.
pub struct KeyGuard<K: Eq + Hash + Clone> {
    key: K,
    entry: Option<Arc<AsyncMutex<()>>>,
    guard: Option<OwnedMutexGuard<()>>,
    map: Arc<Mutex<HashMap<K, Arc<AsyncMutex<()>>>>>,
}

impl<K: Eq + Hash + Clone> KeyedLocks<K> {
    /// Waits up to `wait` for the key; `None` if it is still held then.
    pub async fn acquire(&self, key: &K, wait: Duration) -> Option<KeyGuard<K>> {
        let entry = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(key.clone()).or_default().clone()
        };
        // Dropping `pending` on timeout still releases our reference through its Drop.
        let mut pending = KeyGuard {
            key: key.clone(),
            entry: Some(entry.clone()),
            guard: None,
            map: self.map.clone(),
        };
        let guard = tokio::time::timeout(wait, entry.lock_owned()).await.ok()?;
        pending.guard = Some(guard);
        Some(pending)
    }

    /// Number of keys currently held or awaited (tests, metrics).
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K: Eq + Hash + Clone> Drop for KeyGuard<K> {
    fn drop(&mut self) {
        // Release the lock before deciding whether anyone else still needs the entry.
        self.guard.take();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = self.entry.take() {
            // Our clone + the map's: nobody else holds or waits for this key.
            if Arc::strong_count(&entry) == 2 {
                map.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_holder_waits_then_times_out_and_entries_are_cleaned_up() {
        let locks: KeyedLocks<String> = KeyedLocks::default();
        let k = "a".to_string();
        let first = locks.acquire(&k, Duration::from_millis(10)).await.unwrap();
        assert!(locks.acquire(&k, Duration::from_millis(20)).await.is_none());
        let other = locks
            .acquire(&"b".to_string(), Duration::from_millis(10))
            .await;
        assert!(other.is_some());
        drop(other);
        drop(first);
        assert!(locks.is_empty());
        let again = locks.acquire(&k, Duration::from_millis(10)).await;
        assert!(again.is_some());
    }

    #[tokio::test]
    async fn a_waiter_gets_the_key_when_the_holder_lets_go() {
        let locks: Arc<KeyedLocks<u32>> = Arc::new(KeyedLocks::default());
        let first = locks.acquire(&1, Duration::from_millis(10)).await.unwrap();
        let l2 = locks.clone();
        let waiter =
            tokio::spawn(async move { l2.acquire(&1, Duration::from_secs(5)).await.is_some() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(first);
        assert!(waiter.await.unwrap());
        assert!(locks.is_empty());
    }
}
