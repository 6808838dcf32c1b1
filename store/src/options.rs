//! How a store is opened: durability mode and sizes.

use std::time::Duration;

/// When acknowledged writes become safe against power loss. Every mode survives `kill -9` of any
/// process with nothing acknowledged lost; see SPEC.md, "Guarantees".
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// A write returns after its journal record is on disk (`fdatasync`); concurrent writers
    /// share one flush (group commit). The default.
    Sync,
    /// The journal is flushed at most this long after a write (by the writers and a background
    /// thread). After power loss, at most the last interval of writes is lost.
    Periodic(Duration),
    /// No automatic flush; [`crate::Store::sync`] and checkpoints make writes durable.
    None,
}

/// What a write that does not fit does (see [`Options::when_full`]).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum WhenFull {
    /// It fails with [`crate::Error::Full`] and nothing is changed. The default.
    #[default]
    Refuse,
    /// Other entries are evicted until it fits: expired ones first, then the least recently
    /// used in an approximate (CLOCK) order, never one the write itself names (SPEC.md §4.1).
    Evict,
}

/// The journal of a new store whose `max_size` and `journal_size` are not given.
pub(crate) const DEFAULT_JOURNAL_SIZE: u64 = 16 << 20;
/// The largest journal chosen without `journal_size` (a sixteenth of a `max_size` of 2 GiB).
pub(crate) const MAX_AUTO_JOURNAL_SIZE: u64 = 128 << 20;

/// Options for [`crate::Store::open`]. Sizes apply when the store is created; an existing store
/// keeps the sizes it was created with, except that a larger [`max_size`](Self::max_size)
/// raises its limit.
#[derive(Clone)]
pub struct Options {
    pub(crate) durability: Durability,
    pub(crate) max_size: u64,
    /// Whether `max_size` was given (not the default): only then does an open raise an existing
    /// store's limit to it, so tools opening with defaults change nothing.
    pub(crate) max_size_given: bool,
    pub(crate) initial_size: u64,
    pub(crate) journal_size: u64,
    /// Whether `journal_size` was given: otherwise a new store's journal follows `max_size`
    /// (`journal_size_for_new`).
    pub(crate) journal_size_given: bool,
    pub(crate) reset_generation: Option<u64>,
    pub(crate) create: bool,
    /// Set only by `Store::open_anonymous`: the files are unlinked at once and nobody can reopen
    /// them, so nothing is flushed to disk (no fsync, no msync, no closing checkpoint).
    pub(crate) ephemeral: bool,
    pub(crate) index_slots: u64,
    /// `Options::read_only`: no file is created, locked or written (SPEC.md §6.8).
    pub(crate) read_only: bool,
    pub(crate) io: crate::io::SharedIo,
    pub(crate) background_checkpoints: bool,
    pub(crate) when_full: WhenFull,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("durability", &self.durability)
            .field("max_size", &self.max_size)
            .field("max_size_given", &self.max_size_given)
            .field("initial_size", &self.initial_size)
            .field("journal_size", &self.journal_size)
            .field("journal_size_given", &self.journal_size_given)
            .field("reset_generation", &self.reset_generation)
            .field("create", &self.create)
            .field("index_slots", &self.index_slots)
            .field("background_checkpoints", &self.background_checkpoints)
            .field("when_full", &self.when_full)
            .field("read_only", &self.read_only)
            .field("io_wants_mapped_writes", &self.io.wants_mapped_writes())
            .finish()
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Sync,
            max_size: 1 << 30,
            max_size_given: false,
            initial_size: 1 << 20,
            journal_size: DEFAULT_JOURNAL_SIZE,
            journal_size_given: false,
            reset_generation: None,
            create: true,
            ephemeral: false,
            index_slots: 4096,
            read_only: false,
            io: std::sync::Arc::new(crate::io::RealIo),
            background_checkpoints: false,
            when_full: WhenFull::Refuse,
        }
    }
}

impl Options {
    /// Whether a thread of this handle flushes checkpoints (default false). A checkpoint's flush
    /// (an `msync` of the data file, SPEC.md §5) never runs under the write lock; without this
    /// thread the next write after a checkpoint was frozen runs it before taking the lock, so
    /// that one write takes as long as the flush. With it, no write waits for a flush unless the
    /// journal's half fills before the flush is done. The thread is started by the first write
    /// of a process that finds a flush due, not at open, and again in a child forked after it
    /// started (which does not inherit it); [`Store::stop_threads`](crate::Store::stop_threads)
    /// stops it. Honoured by `open_anonymous` too.
    pub fn background_checkpoints(mut self, yes: bool) -> Self {
        self.background_checkpoints = yes;
        self
    }

    /// When writes become durable (default [`Durability::Sync`]). Chosen per handle: processes
    /// sharing a store may use different modes.
    pub fn durability(mut self, d: Durability) -> Self {
        self.durability = d;
        self
    }
    /// The largest the data file may grow to (default 1 GiB). At most 4 TiB (the format's
    /// offset limit); creating a store with more, or with more than this process can reserve,
    /// is refused. Given for an existing store with a smaller limit, the open raises that limit
    /// to it (durably, for every process that has the store open, SPEC.md §9); a smaller value
    /// never lowers it (use [`crate::Store::set_max_size`]).
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = bytes;
        self.max_size_given = true;
        self
    }
    /// The data file's size when created; it grows on demand up to `max_size`.
    pub fn initial_size(mut self, bytes: u64) -> Self {
        self.initial_size = bytes;
        self
    }
    /// The journal's size for a new store (from 64 KiB to 1 GiB, rounded up to 4 KiB; outside
    /// that range `open` fails with [`crate::Error::Incompatible`]). Not given, it is 16 MiB, or
    /// a sixteenth of [`max_size`](Self::max_size) when that is given, up to 128 MiB (a store
    /// meant for more data gets a longer checkpoint cycle, SPEC.md §3). It bounds the
    /// largest single write (a quarter of it) and trades write throughput against recovery time:
    /// a larger journal checkpoints less often, but a crash leaves more of it to replay at the
    /// next open. Each record counts for at least 256 bytes of it, so a cycle holds at most
    /// `bytes / 256` records however small they are (SPEC.md §3 gives measured numbers). An
    /// existing store keeps the size it was created with.
    pub fn journal_size(mut self, bytes: u64) -> Self {
        self.journal_size = bytes;
        self.journal_size_given = true;
        self
    }

    /// The journal a new store is created with: the one given, else one sized to the data.
    pub(crate) fn journal_size_for_new(&self) -> u64 {
        if self.journal_size_given {
            self.journal_size
        } else if self.max_size_given {
            // Between two checkpoints the journal holds at most a sixteenth of what the store
            // may hold; the ring of freed blocks (`lock_file::PENDING_CAP`) is sized so that a
            // journal of `MAX_AUTO_JOURNAL_SIZE` still ends the cycle before the ring does.
            (self.max_size / 16)
                .clamp(DEFAULT_JOURNAL_SIZE, MAX_AUTO_JOURNAL_SIZE)
                .next_multiple_of(crate::format::PAGE)
        } else {
            DEFAULT_JOURNAL_SIZE
        }
    }
    /// Reset-on-restart: if `generation` is newer than the one recorded in the store, the store is
    /// cleared and records it; an equal or older generation leaves the data alone, so an older
    /// server never wipes a newer one's data.
    pub fn reset_on_start(mut self, generation: u64) -> Self {
        self.reset_generation = Some(generation);
        self
    }
    /// Sends every write, growth and flush of the store's files through `io` instead of straight
    /// to the system calls (crash simulation, fault injection; see [`crate::StorageIo`]). The
    /// default is [`crate::RealIo`].
    pub fn io(mut self, io: std::sync::Arc<dyn crate::StorageIo>) -> Self {
        self.io = io;
        self
    }
    /// Index slots of a new store (rounded up to a power of two, at least 16; default 4096). The
    /// index is rebuilt, twice as large, whenever it is 70 % full, so this only saves rebuilds
    /// for stores whose size is known in advance.
    pub fn index_slots(mut self, slots: u64) -> Self {
        self.index_slots = slots.clamp(16, 1 << 28).next_power_of_two();
        self
    }
    /// What this handle's writes do when the store is full (default [`WhenFull::Refuse`]).
    /// Chosen per handle, like durability.
    pub fn when_full(mut self, w: WhenFull) -> Self {
        self.when_full = w;
        self
    }
    /// Whether a missing store is created (default true).
    pub fn create(mut self, yes: bool) -> Self {
        self.create = yes;
        self
    }
    /// Opens an existing store for reading only (SPEC.md §6.8). Nothing is created, locked or
    /// written: no lock file is made or mapped (it may be missing or unwritable), no election
    /// byte is taken (no writer or opener ever waits for this handle), no recovery, checkpoint or
    /// flush runs, and only read permission on the data file and the journal is needed (both are
    /// opened `O_RDONLY`, the data file mapped `PROT_READ`). The files must be regular files
    /// reached without a symlink, but need not be the reader's own (their mode and links are the
    /// writers' concern); the directory is checked as for any open (SPEC.md §1.1), except that it
    /// may also belong to the files' owner.
    ///
    /// The handle shows the newest durable checkpoint plus every valid journal record after it,
    /// replayed into memory (an overlay consulted before the mapped index), so it sees a store
    /// that was not closed cleanly, or that other processes are writing, as recovery would
    /// leave it, without running recovery. That view is taken at open; writes made after it
    /// are not seen until a checkpoint by a writer moves the durable state on, when the handle
    /// takes a new view (the old one's blocks may then be reused). Every read is whole (checksum
    /// verified, validated against checkpoints). Writes, [`checkpoint`](crate::Store::checkpoint),
    /// [`sync`](crate::Store::sync) and [`set_max_size`](crate::Store::set_max_size) return
    /// [`crate::Error::ReadOnly`]. [`crate::Store::read_only_view`] says what the view holds.
    /// Other options are ignored, except `max_size`, which only sizes the address space
    /// reserved to follow the file's growth.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self.create = false;
        self
    }
}
