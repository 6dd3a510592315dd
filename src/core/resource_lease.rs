//! Resource leases: a `filesystem` resource runs only while this node holds its lease on the
//! shared disk, a second guard beside group ownership for the one resource type where two
//! holders destroy data.
//!
//! For every `filesystem` resource (catalog) of every group online here, the node finds the
//! block bound to the resource's name, or a free one (`binding.rs`), and challenges, claims
//! and defends it by the quorum record's rules (`machine.rs`). It renews the lease every renew
//! interval while it holds the group (online, or stopping and not yet confirmed stopped), and
//! releases it (owner 0) once the group's stop is confirmed (`Input::GroupStopped`).
//!
//! **The driver's side** (`Output::ResourceLease`): `held: true` once the lease is ours (mount
//! now), `held: false` at once when it is lost or given back (unmount now). Every announced
//! lease also bounds the dead-man (`Output::ArmDeadman`), so a hung daemon's monitor stops the
//! resource before the lease can pass to another node; a lease is announced only once its
//! validity reaches that far (`rearm_deadman`). Losing a lease fails its group here
//! (`on_group_failed`), so placement moves the group.

mod binding;
mod machine;

use std::collections::BTreeMap;

use self::binding::{BlockView, Target, UnreadableSeen};
use self::machine::{LeaseBlock, Params, Reaction};
use super::disk_records::{ResourceLease, Sealed, BLOCK_SIZE, LEASE_NAME_BYTES_MAX};
use super::node::{Node, Purpose};
use super::timeout::TICK_MS;
use super::{bit, Event, Mutation, Output};
use crate::core::Dropped;

/// The resource type whose lease is kept on the shared disk.
pub const LEASED_RESOURCE_KIND: &str = "filesystem";

/// One resource's lease, from the first probe to the release.
#[derive(Debug)]
pub(crate) struct Acquisition {
    /// Tells this acquisition's disk completions from those of an abandoned one.
    id: u64,
    /// The slot of the group it is kept for.
    group: u8,
    phase: Phase,
    /// `held: true` was sent and not yet taken back.
    announced: bool,
    /// Reads issued together: a probe (every block), a read of our block, or a final read of
    /// our block with the claim check (every block).
    batch: Option<Batch>,
    unreadable: UnreadableSeen,
}

#[derive(Debug)]
enum Phase {
    /// Finding the block (a probe is issued whenever none is in flight).
    Probing,
    /// No block can carry it: said once; tried again when its group next comes online here.
    Unavailable,
    Contending {
        block: u32,
        /// What the probe that chose `block` saw (index = block).
        probe: Vec<BlockView>,
        /// Boxed: the records it keeps dwarf the other phases.
        machine: Box<LeaseBlock>,
    },
}

#[derive(Debug)]
struct Batch {
    issue_tick: u64,
    /// Index = block: `None` not asked or not back, `Some(None)` failed.
    views: Vec<Option<Option<BlockView>>>,
    remaining: usize,
    /// A challenger's read that may lead to the claim: every block was read with it.
    final_read: bool,
}

/// The lease of each leased resource of the groups held here; its fields are private to this
/// file.
#[derive(Debug)]
pub(super) struct ResourceLeases {
    /// By resource name.
    by_name: BTreeMap<String, Acquisition>,
    /// Numbers the acquisitions, so a completion for an abandoned one is ignored.
    next_id: u64,
}

impl Default for ResourceLeases {
    fn default() -> ResourceLeases {
        ResourceLeases {
            by_name: BTreeMap::new(),
            next_id: 1,
        }
    }
}

impl Node {
    /// Whether the driver may keep `resource` running: between `Output::ResourceLease` with
    /// `held: true` and the next one with `held: false`.
    pub fn resource_lease_held(&self, resource: &str) -> bool {
        self.resource_leases
            .by_name
            .get(resource)
            .is_some_and(|acquisition| acquisition.announced)
    }

    /// Every lease announced held, with the local time (ms) at which its validity ends.
    pub fn resource_leases_held(&self) -> Vec<(String, u64)> {
        self.resource_leases
            .by_name
            .iter()
            .filter(|(_, acquisition)| acquisition.announced)
            .map(|(name, acquisition)| (name.clone(), acquisition.valid_until_tick() * TICK_MS))
            .collect()
    }

    /// The earliest end of an announced lease's validity: the dead-man fires by then.
    pub(super) fn resource_leases_valid_until_tick(&self) -> Option<u64> {
        self.resource_leases
            .by_name
            .values()
            .filter(|acquisition| acquisition.announced)
            .map(Acquisition::valid_until_tick)
            .min()
    }

    /// No release of a lease still in flight (a clean shutdown waits for them).
    pub(super) fn resource_leases_released(&self) -> bool {
        self.resource_leases.by_name.is_empty()
    }

    /// The leased resources of the groups online here, each with its group's slot.
    fn leased_resources_wanted(&self) -> Vec<(String, u8)> {
        self.catalog()
            .resources
            .iter()
            .filter(|resource| resource.kind == LEASED_RESOURCE_KIND)
            .filter_map(|resource| {
                let slot = self.catalog().group(&resource.group)?.slot;
                (self.placement.online() & bit(slot) != 0).then(|| (resource.name.clone(), slot))
            })
            .collect()
    }

    /// After the groups changed: start leases for resources newly wanted, abandon those being
    /// acquired for groups no longer online, release those of groups no longer held. A lease
    /// of a group still held is kept even if its resource left the catalog: the driver may
    /// still run it until the group stops.
    pub(super) fn reconcile_resource_leases(&mut self) {
        let wanted = self.leased_resources_wanted();
        let holding = self.holding();
        let names: Vec<String> = self.resource_leases.by_name.keys().cloned().collect();
        for name in names {
            let acquisition = &self.resource_leases.by_name[&name];
            let group_held = holding & bit(acquisition.group) != 0;
            let still_wanted = wanted.contains(&(name.clone(), acquisition.group));
            if acquisition.owned(self.now()) {
                if !group_held {
                    self.release_resource_lease(&name);
                }
            } else if !acquisition.releasing() && !still_wanted {
                self.resource_leases.by_name.remove(&name);
            }
        }
        for (name, group) in wanted {
            if !self.resource_leases.by_name.contains_key(&name) {
                self.start_resource_lease(name, group);
            }
        }
    }

    fn start_resource_lease(&mut self, name: String, group: u8) {
        let id = self.resource_leases.next_id;
        self.resource_leases.next_id += 1;
        let unavailable = if name.len() >= LEASE_NAME_BYTES_MAX {
            Some("its name is longer than a lease record holds (47 bytes)")
        } else if self.config().geometry.resource_lease_slots() == 0 {
            Some("the disk has no resource lease blocks (disk format --resource-leases)")
        } else {
            None
        };
        let acquisition = Acquisition {
            id,
            group,
            phase: if unavailable.is_some() {
                Phase::Unavailable
            } else {
                Phase::Probing
            },
            announced: false,
            batch: None,
            unreadable: UnreadableSeen::default(),
        };
        self.resource_leases
            .by_name
            .insert(name.clone(), acquisition);
        match unavailable {
            Some(reason) => self.emit(Event::ResourceLeaseUnavailable {
                resource: name,
                reason,
            }),
            None => self.resource_lease_io(&name, true),
        }
    }

    /// First thing on every tick (after the membership lease): a lease past its validity is
    /// lost, at once.
    pub(super) fn expire_resource_leases(&mut self) {
        let now = self.now();
        let mut expired = Vec::new();
        for (name, acquisition) in &mut self.resource_leases.by_name {
            if let Phase::Contending { machine, .. } = &mut acquisition.phase {
                if machine.expire(now) {
                    expired.push(name.clone());
                }
            }
        }
        for name in expired {
            self.react(&name, Reaction::Lost);
        }
    }

    /// Every renew interval: probes, challenges' reads, renewals.
    pub(super) fn resource_lease_tick(&mut self) {
        let names: Vec<String> = self.resource_leases.by_name.keys().cloned().collect();
        for name in names {
            self.resource_lease_io(&name, true);
        }
    }

    /// Issues the reads `name` wants now (`interval`: its renew interval is due).
    fn resource_lease_io(&mut self, name: &str, interval: bool) {
        let now = self.now();
        let blocks = self.config().geometry.resource_lease_slots();
        let Some(acquisition) = self.resource_leases.by_name.get_mut(name) else {
            return;
        };
        if acquisition.batch.is_some() {
            return;
        }
        let (wanted, final_read): (Vec<u32>, bool) = match &mut acquisition.phase {
            Phase::Unavailable => return,
            Phase::Probing if interval => ((0..blocks).collect(), false),
            Phase::Probing => return,
            Phase::Contending { block, machine, .. } => match machine.read_due(now, interval) {
                None => return,
                Some(true) => {
                    machine.read_issued();
                    ((0..blocks).collect(), true)
                }
                Some(false) => {
                    machine.read_issued();
                    (vec![*block], false)
                }
            },
        };
        acquisition.batch = Some(Batch {
            issue_tick: now,
            views: vec![None; blocks as usize],
            remaining: wanted.len(),
            final_read,
        });
        let id = acquisition.id;
        for block in wanted {
            let offset = self.config().geometry.resource_lease_offset(block);
            self.disk_read(
                Purpose::ResourceLeaseRead {
                    acquisition: id,
                    block,
                },
                offset,
            );
        }
    }

    pub(super) fn on_resource_lease_read(
        &mut self,
        id: u64,
        block: u32,
        result: Option<&[u8; BLOCK_SIZE]>,
    ) {
        let now = self.now();
        let cluster_id = self.config().cluster_id;
        let Some(name) = self.resource_lease_name(id) else {
            return;
        };
        let view = result.map(|block| BlockView::of(block, cluster_id));
        if matches!(view, Some(BlockView::Unreadable { .. })) {
            self.count_drop(Dropped::DiskRecordInvalid);
        }
        let acquisition = self
            .resource_leases
            .by_name
            .get_mut(&name)
            .expect("found by id just now");
        if let Some(view) = &view {
            acquisition.unreadable.note(block, view, now);
        }
        let batch = acquisition
            .batch
            .as_mut()
            .expect("a read belongs to a batch");
        assert!(batch.views[block as usize].is_none(), "one read per block");
        batch.views[block as usize] = Some(view);
        batch.remaining -= 1;
        if batch.remaining > 0 {
            return;
        }
        let batch = acquisition.batch.take().expect("just completed");
        self.on_resource_lease_batch(&name, batch);
    }

    fn on_resource_lease_batch(&mut self, name: &str, batch: Batch) {
        let now = self.now();
        let epoch = self.membership.epoch();
        let params = self.resource_lease_params();
        let acquisition = self
            .resource_leases
            .by_name
            .get_mut(name)
            .expect("caller found it");
        let reaction = match &mut acquisition.phase {
            Phase::Unavailable => unreachable!("no reads while unavailable"),
            Phase::Probing => {
                let views: Option<Vec<BlockView>> = batch.views.into_iter().flatten().collect();
                // A failed read: the next interval probes again.
                let Some(views) = views else { return };
                match binding::target(name, &views) {
                    Target::Block(block) => {
                        acquisition.phase = Phase::Contending {
                            block,
                            probe: views,
                            machine: Box::new(LeaseBlock::new(params, name.to_string())),
                        };
                        self.resource_lease_io(name, true);
                        return;
                    }
                    Target::NoneFree => {
                        acquisition.phase = Phase::Unavailable;
                        self.emit(Event::ResourceLeaseUnavailable {
                            resource: name.to_string(),
                            reason: "every resource lease block is bound to another resource",
                        });
                        return;
                    }
                }
            }
            Phase::Contending {
                block,
                probe,
                machine,
            } => match batch.views[*block as usize].clone().flatten() {
                None => machine.on_read_error(),
                Some(view) => {
                    let verdict = batch.final_read.then(|| {
                        let check: Vec<Option<BlockView>> =
                            batch.views.into_iter().flatten().collect();
                        binding::verdict(
                            name,
                            *block,
                            probe,
                            &check,
                            &acquisition.unreadable,
                            batch.issue_tick,
                            params.defence_wait_ticks,
                        )
                    });
                    machine.on_read(view.record(), batch.issue_tick, now, verdict, epoch)
                }
            },
        };
        self.react(name, reaction);
    }

    pub(super) fn on_resource_lease_written(&mut self, id: u64, ok: bool, issue_tick: u64) {
        let now = self.now();
        let Some(name) = self.resource_lease_name(id) else {
            return;
        };
        let acquisition = self
            .resource_leases
            .by_name
            .get_mut(&name)
            .expect("found by id");
        let Phase::Contending { machine, .. } = &mut acquisition.phase else {
            unreachable!("only a contending acquisition writes")
        };
        let reaction = machine.on_write(ok, issue_tick, now);
        self.react(&name, reaction);
        // A release waits for the write in flight, then reads at once.
        self.resource_lease_io(&name, false);
    }

    /// Applies what the machine of `name` asks for.
    fn react(&mut self, name: &str, reaction: Reaction) {
        let Some(acquisition) = self.resource_leases.by_name.get_mut(name) else {
            return;
        };
        let group = acquisition.group;
        match reaction {
            Reaction::Nothing => {}
            Reaction::Write(sealed) => {
                let Phase::Contending { block, .. } = acquisition.phase else {
                    unreachable!("only a contending acquisition writes")
                };
                let id = acquisition.id;
                let offset = self.config().geometry.resource_lease_offset(block);
                let sealed = Sealed {
                    cluster_id: sealed.cluster_id,
                    sequence: sealed.sequence,
                    record: ResourceLease(sealed.record),
                };
                let purpose = Purpose::ResourceLeaseWrite {
                    acquisition: id,
                    issue_tick: self.now(),
                };
                self.disk_write(purpose, offset, &sealed);
            }
            Reaction::Reprobe => {
                acquisition.phase = Phase::Probing;
                // Probed again at the next interval, if its group is still online then.
            }
            Reaction::Won | Reaction::Renewed => self.announce_resource_lease(name),
            Reaction::Lost => {
                let announced = acquisition.announced;
                self.resource_leases.by_name.remove(name);
                self.take_back_resource_lease(name, announced);
                self.rearm_deadman();
                if self.placement.online() & bit(group) != 0 {
                    // Like a failure of the group here: placement moves it.
                    let refuse_ms = 2 * u64::from(self.config().timing.lease_expiry_ms);
                    self.on_group_failed(group, refuse_ms);
                }
            }
            Reaction::Released => {
                self.resource_leases.by_name.remove(name);
            }
        }
    }

    /// Says `held: true` once the lease is ours, its group still online here (a group being
    /// stopped starts nothing), and the dead-man can cover it (its validity lies at least the
    /// driver's re-arm timeout ahead, see `rearm_deadman`); a later renewal may say it then.
    fn announce_resource_lease(&mut self, name: &str) {
        let now = self.now();
        let reach = now + self.timeouts().fence_timeout_ticks;
        let online = self.placement.online();
        let acquisition = self
            .resource_leases
            .by_name
            .get_mut(name)
            .expect("caller found it");
        if acquisition.announced {
            // A renewal: the dead-man may move on.
            self.rearm_deadman();
            return;
        }
        let covered = acquisition.valid_until_tick() >= reach;
        if !covered || online & bit(acquisition.group) == 0 {
            return;
        }
        acquisition.announced = true;
        self.rearm_deadman();
        self.push_output(Output::ResourceLease {
            resource: name.to_string(),
            held: true,
        });
    }

    /// Says `held: false` for a lease that was announced (`lost`: it ran out or was taken).
    fn take_back_resource_lease(&mut self, name: &str, announced: bool) {
        if announced {
            self.push_output(Output::ResourceLease {
                resource: name.to_string(),
                held: false,
            });
        }
    }

    /// The group of `name` is confirmed stopped: the driver no longer runs it; give it back.
    fn release_resource_lease(&mut self, name: &str) {
        let acquisition = self
            .resource_leases
            .by_name
            .get_mut(name)
            .expect("caller found it");
        let announced = std::mem::take(&mut acquisition.announced);
        if let Phase::Contending { machine, .. } = &mut acquisition.phase {
            machine.release();
        }
        self.take_back_resource_lease(name, announced);
        self.rearm_deadman();
        self.resource_lease_io(name, false);
    }

    fn resource_lease_name(&self, id: u64) -> Option<String> {
        self.resource_leases
            .by_name
            .iter()
            .find(|(_, acquisition)| acquisition.id == id)
            .map(|(name, _)| name.clone())
    }

    fn resource_lease_params(&self) -> Params {
        let skip_defence = self.config().mutation == Mutation::NoResourceLeaseDefence;
        Params {
            node_id: self.me(),
            incarnation: self.config().incarnation,
            cluster_id: self.config().cluster_id,
            hold_ticks: self.timeouts().lease_hold_ticks,
            defence_wait_ticks: if skip_defence {
                0
            } else {
                self.timeouts().lease_expiry_observed_ticks
            },
            read_age_ticks_max: super::timeout::DISK_IO_LATENCY_MAX_MS / TICK_MS + 1,
        }
    }

    /// Local invariants: an announced lease is valid, its group held here, and the dead-man
    /// fires by its end.
    pub(super) fn assert_resource_lease_invariants(&self) {
        for (name, acquisition) in &self.resource_leases.by_name {
            if !acquisition.announced {
                continue;
            }
            assert_ne!(
                self.holding() & bit(acquisition.group),
                0,
                "{name}: announced without its group"
            );
            let valid_until = acquisition.valid_until_tick();
            assert!(
                self.now() < valid_until,
                "{name}: announced past its validity"
            );
            assert!(
                self.deadman.armed_tick() <= valid_until,
                "{name}: the dead-man is armed past its lease"
            );
        }
    }
}

impl Acquisition {
    fn valid_until_tick(&self) -> u64 {
        match &self.phase {
            Phase::Contending { machine, .. } => machine.valid_until_tick(),
            _ => 0,
        }
    }

    fn owned(&self, now_ticks: u64) -> bool {
        matches!(&self.phase, Phase::Contending { machine, .. } if machine.owned(now_ticks))
    }

    fn releasing(&self) -> bool {
        matches!(&self.phase, Phase::Contending { machine, .. } if machine.releasing())
    }
}
