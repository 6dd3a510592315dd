//! The order in which everything stops (`StopAll`, the dead-man fence): top-down along the
//! dependencies each `Start` named, as the group runner stops a group. A resource may begin to
//! stop once no other held resource needs it; resources that do not need each other stop in
//! parallel. A dependency that is not held does not hold anything back.
//!
//! A cycle (the catalog refuses one; a daemon could still send it) would hold its members back
//! for ever, so when nothing is on its way down and nothing may begin, everything left begins.
use super::{Held, Holder};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

impl Holder {
    /// The held resources that may begin to stop now, in name order: those not yet on their
    /// way down (`is_going`) that no other held resource needs; when there are none and none is
    /// on its way down, all of them (a cycle).
    pub(super) fn ready_to_stop(&self, is_going: impl Fn(&str, &Held) -> bool) -> Vec<String> {
        let needed: BTreeSet<&str> = self
            .held
            .values()
            .flat_map(|held| held.depends.iter().map(String::as_str))
            .collect();
        let waiting: Vec<&String> = self
            .held
            .iter()
            .filter(|(name, held)| !is_going(name, held))
            .map(|(name, _)| name)
            .collect();
        let free: Vec<String> = waiting
            .iter()
            .filter(|name| !needed.contains(name.as_str()))
            .map(|name| name.to_string())
            .collect();
        match free.is_empty() && waiting.len() == self.held.len() {
            true => waiting.into_iter().cloned().collect(),
            false => free,
        }
    }

    /// Every held resource, each before the held resources it needs (Kahn's algorithm; the
    /// members of a cycle come last, in name order).
    pub(super) fn top_down(&self) -> Vec<String> {
        let mut dependents: BTreeMap<&str, usize> =
            self.held.keys().map(|name| (name.as_str(), 0)).collect();
        for held in self.held.values() {
            for needed in &held.depends {
                if let Some(count) = dependents.get_mut(needed.as_str()) {
                    *count += 1;
                }
            }
        }
        let mut free: VecDeque<&str> = dependents
            .iter()
            .filter(|(_, count)| **count == 0)
            .map(|(name, _)| *name)
            .collect();
        let mut order: Vec<String> = Vec::with_capacity(self.held.len());
        while let Some(name) = free.pop_front() {
            order.push(name.to_string());
            for needed in self
                .held
                .get(name)
                .into_iter()
                .flat_map(|held| &held.depends)
            {
                if let Some(count) = dependents.get_mut(needed.as_str()) {
                    *count -= 1;
                    if *count == 0 {
                        free.push_back(needed.as_str());
                    }
                }
            }
        }
        let placed: BTreeSet<String> = order.iter().cloned().collect();
        let cycle: Vec<String> = self
            .held
            .keys()
            .filter(|name| !placed.contains(*name))
            .cloned()
            .collect();
        order.extend(cycle);
        order
    }
}
