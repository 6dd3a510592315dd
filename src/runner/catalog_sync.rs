//! A new catalog: which groups and resources exist, under which specs. Nothing is started or
//! stopped here; `reconcile` acts on what changed.

use super::group::GroupRun;
use super::resource::{GiveUp, ResourceRun};
use super::{Runner, State};
use crate::core::catalog::{Catalog, ResourceSpec};
use std::collections::BTreeSet;

impl Runner {
    pub(super) fn apply_catalog(&mut self, catalog: &Catalog) {
        self.apply_groups(catalog);
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        for spec in &catalog.resources {
            // `catalog::read` leaves out resources of unknown groups; skipped here all the same.
            let Some(group) = catalog.group(&spec.group) else {
                continue;
            };
            seen.insert(spec.name.as_str());
            self.apply_resource(spec, group.slot);
        }
        for resource in self.resources.values_mut() {
            if !seen.contains(resource.name.as_str()) {
                resource.in_group = false;
                resource.moving_to = None;
            }
        }
    }

    fn apply_groups(&mut self, catalog: &Catalog) {
        let listed: BTreeSet<u8> = catalog.groups.iter().map(|group| group.slot).collect();
        for group in self.groups.values_mut() {
            if group.in_catalog && !listed.contains(&group.slot) {
                group.in_catalog = false;
                // A removed group that ran here is stopped, and the daemon told when.
                if self.held_slots.contains(&group.slot) {
                    group.stop_owed = true;
                }
            }
        }
        for spec in &catalog.groups {
            let group = self
                .groups
                .entry(spec.slot)
                .or_insert_with(|| GroupRun::new(spec.slot));
            group.name = Some(spec.name.clone());
            group.in_catalog = true;
        }
    }

    fn apply_resource(&mut self, spec: &ResourceSpec, slot: u8) {
        let Some(resource) = self.resources.get_mut(&spec.name) else {
            self.resources
                .insert(spec.name.clone(), ResourceRun::new(spec.clone(), slot));
            return;
        };
        if resource.slot != slot {
            // Moved to another group: stopped here first, then it joins the other one.
            resource.in_group = false;
            resource.moving_to = Some((slot, spec.clone()));
            return;
        }
        let reconfigured = resource.spec.kind != spec.kind || resource.spec.params != spec.params;
        let cleaned_up = resource.cleanup_seen != spec.cleanup;
        resource.spec = spec.clone();
        resource.in_group = true;
        resource.moving_to = None;
        resource.cleanup_seen = spec.cleanup;
        if reconfigured && !resource.is_down() {
            // What runs was started with the old type or parameters.
            resource.restart_owed = true;
        }
        if reconfigured && resource.gave_up == Some(GiveUp::Configuration) {
            // The configuration that was rejected changed: worth a new try.
            resource.gave_up = None;
        }
        if cleaned_up {
            resource.forget_failures();
            resource.last_failure = None;
            if resource.state == State::Failed && resource.is_down() {
                let name = spec.name.clone();
                self.set_resource_state(&name, State::Offline, "cleaned up".to_string());
            }
        }
    }
}
