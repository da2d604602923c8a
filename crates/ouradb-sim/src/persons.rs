//! Several simulated Oura users on one server, as one OAuth application (or
//! one household) sees them: every accepted token belongs to one person, and
//! each person has a seed of their own, hence their own personal_info id and
//! email, history length, ring set-up day and webhook `user_id`.
//!
//! Person 0 is the one [`SimConfig::seed`], [`SimConfig::days`],
//! [`SimConfig::user_id`] and [`SimConfig::tokens`] describe, exactly as a
//! single-person simulator always served it; [`SimConfig::persons`] lists the
//! others. A person's dataset is generated on first use (a five-year person
//! is tens of MB), so memory grows only with the persons actually asked for.
//!
//! Which person an OAuth sign-in gets: the `login_hint` of the authorization
//! request (the person's email, personal_info id or webhook `user_id`), or,
//! without one, the person signed in to the simulated browser session
//! ([`crate::SimServer::sign_in_as`], person 0 until changed).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use jiff::civil::Date;

use crate::data::{self, Dataset};
use crate::{Application, Shared, SimConfig};

/// One simulated Oura user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonConfig {
    /// Seed of everything the person's data contains.
    pub seed: u64,
    /// Days of history ending with [`SimConfig::today`]; the person's current
    /// ring was set up on the first of them.
    pub days: u32,
    /// `user_id` of the webhook events about this person's data.
    pub user_id: String,
    /// Personal access tokens that read this person's data.
    pub tokens: Vec<String>,
}

impl PersonConfig {
    /// The `email` the person's personal_info serves.
    pub fn email(&self) -> String {
        data::person_email(self.seed)
    }

    /// The `id` the person's personal_info serves.
    pub fn personal_info_id(&self) -> String {
        data::person_id(self.seed)
    }

    /// Person `index` (1 or more) derived from the first person of `cfg`:
    /// a seed of its own, a history 10 to 40 % shorter (none for every
    /// fifth), and, when the first person has a personal access token `T`,
    /// the token `T-<index+1>`.
    fn derived(cfg: &SimConfig, index: usize) -> PersonConfig {
        // Multiplying by an odd constant is a bijection of u64, so no
        // derived seed equals the base seed or another derived one.
        let seed = cfg
            .seed
            .wrapping_add((index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let shorter = cfg.days * (index % 5) as u32 / 10;
        PersonConfig {
            seed,
            days: (cfg.days - shorter).max(1),
            user_id: format!("sim-user-{seed}"),
            tokens: cfg
                .tokens
                .first()
                .map(|t| vec![format!("{t}-{}", index + 1)])
                .unwrap_or_default(),
        }
    }
}

impl SimConfig {
    /// This configuration with `n` persons in all: the first as configured,
    /// the others derived from it (see [`SimConfig::persons`]). Call it after
    /// setting `seed`, `days` and `tokens`.
    pub fn with_persons(mut self, n: usize) -> SimConfig {
        self.persons = (1..n.max(1))
            .map(|i| PersonConfig::derived(&self, i))
            .collect();
        self
    }

    /// How many persons the server knows.
    pub fn person_count(&self) -> usize {
        1 + self.persons.len()
    }

    /// Person `index`; 0 is the one the top-level fields describe.
    pub fn person(&self, index: usize) -> Option<PersonConfig> {
        match index {
            0 => Some(PersonConfig {
                seed: self.seed,
                days: self.days,
                user_id: self.user_id.clone(),
                tokens: self.tokens.clone(),
            }),
            i => self.persons.get(i - 1).cloned(),
        }
    }
}

/// The persons of a running server and their datasets.
pub(crate) struct People {
    persons: Vec<PersonConfig>,
    today: Date,
    /// Each person's dataset once generated, shared by every request.
    slots: Vec<OnceLock<Arc<RwLock<Dataset>>>>,
    /// Days every dataset was moved forward since the start. Advancing holds
    /// it for writing, so a dataset being generated meanwhile (which holds it
    /// for reading) cannot miss an advance.
    advanced: RwLock<u32>,
    /// The person the simulated browser is signed in as.
    signed_in: AtomicUsize,
}

impl People {
    /// The persons of `cfg`, person 0 with the dataset `first`.
    pub(crate) fn new(cfg: &SimConfig, first: Dataset) -> People {
        let persons: Vec<PersonConfig> = (0..cfg.person_count())
            .filter_map(|i| cfg.person(i))
            .collect();
        let slots: Vec<OnceLock<_>> = persons.iter().map(|_| OnceLock::new()).collect();
        let _ = slots[0].set(Arc::new(RwLock::new(first)));
        People {
            persons,
            today: cfg.today,
            slots,
            advanced: RwLock::new(0),
            signed_in: AtomicUsize::new(0),
        }
    }

    /// Every personal access token with its person; a token given to two
    /// persons is a configuration error.
    pub(crate) fn token_owners(&self) -> std::io::Result<Vec<(String, usize)>> {
        let mut owners: Vec<(String, usize)> = Vec::new();
        for (i, p) in self.persons.iter().enumerate() {
            for t in &p.tokens {
                if let Some((_, j)) = owners.iter().find(|(o, _)| o == t) {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!(
                            "one personal access token is configured for persons {j} and {i}; \
                             give each person tokens of their own"
                        ),
                    ));
                }
                owners.push((t.clone(), i));
            }
        }
        Ok(owners)
    }

    pub(crate) fn len(&self) -> usize {
        self.persons.len()
    }

    pub(crate) fn config(&self, person: usize) -> &PersonConfig {
        &self.persons[person]
    }

    /// The dataset of `person`, generated now if nobody asked for it yet.
    /// Panics on a person index the server does not have.
    pub(crate) fn data(&self, person: usize) -> Arc<RwLock<Dataset>> {
        let slot = &self.slots[person];
        if let Some(d) = slot.get() {
            return d.clone();
        }
        let advanced = self.advanced.read().unwrap();
        slot.get_or_init(|| {
            let p = &self.persons[person];
            let mut d = Dataset::generate(p.seed, p.days, self.today);
            // Nobody could have seen these days arrive: unannounced.
            d.advance_days(*advanced);
            Arc::new(RwLock::new(d))
        })
        .clone()
    }

    /// Runs `f` on every dataset generated so far, with no dataset generated
    /// meanwhile, then counts `days` as advanced for those generated later.
    pub(crate) fn advance(&self, days: u32, mut f: impl FnMut(usize, &Arc<RwLock<Dataset>>)) {
        let mut advanced = self.advanced.write().unwrap();
        for (i, slot) in self.slots.iter().enumerate() {
            if let Some(d) = slot.get() {
                f(i, d);
            }
        }
        *advanced += days;
    }

    /// Persons whose dataset exists.
    pub(crate) fn generated(&self) -> usize {
        self.slots.iter().filter(|s| s.get().is_some()).count()
    }

    /// The person a `login_hint` names: their email, personal_info id or
    /// webhook `user_id`.
    pub(crate) fn find(&self, hint: &str) -> Option<usize> {
        self.persons.iter().position(|p| {
            p.user_id == hint
                || p.email().eq_ignore_ascii_case(hint)
                || p.personal_info_id() == hint
        })
    }

    pub(crate) fn signed_in(&self) -> usize {
        self.signed_in.load(Ordering::SeqCst)
    }

    pub(crate) fn sign_in_as(&self, person: usize) {
        assert!(person < self.len(), "no simulated person {person}");
        self.signed_in.store(person, Ordering::SeqCst);
    }
}

/// The person and application of a known access token (expired or not).
pub(crate) fn owner(s: &Shared, token: &str) -> Option<(usize, Application)> {
    let a = s.auth.lock().unwrap();
    a.access.get(token).map(|t| (t.person, t.app.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_persons_differ_from_the_first_and_each_other() {
        let cfg = SimConfig::new(7, 730, jiff::civil::date(2024, 6, 30)).with_persons(6);
        assert_eq!(cfg.person_count(), 6);
        let all: Vec<PersonConfig> = (0..6).map(|i| cfg.person(i).unwrap()).collect();
        assert_eq!(all[0].seed, 7);
        assert_eq!(all[0].tokens, vec!["sim-token".to_owned()]);
        assert_eq!(all[1].tokens, vec!["sim-token-2".to_owned()]);
        assert_eq!(all[1].days, 657);
        assert_eq!(all[5].days, 730);
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a.seed, b.seed);
                assert_ne!(a.user_id, b.user_id);
                assert_ne!(a.email(), b.email());
            }
        }
        assert!(cfg.person(6).is_none());
    }

    #[test]
    fn the_command_line_adds_persons_and_the_application_quota() {
        use clap::Parser;
        let argv = ["ouradb-sim", "--persons", "3", "--token", "T"];
        let cfg = crate::cli::Args::try_parse_from(argv)
            .unwrap()
            .into_config();
        assert_eq!(cfg.person_count(), 3);
        assert_eq!(cfg.person(2).unwrap().tokens, vec!["T-3".to_owned()]);
        assert_eq!(cfg.app_rate_limit, 5000);
        let argv = [
            "ouradb-sim",
            "--app-rate-limit",
            "9",
            "--app-rate-window",
            "7",
        ];
        let cfg = crate::cli::Args::try_parse_from(argv)
            .unwrap()
            .into_config();
        assert_eq!(cfg.person_count(), 1);
        assert_eq!(cfg.app_rate_limit, 9);
        assert_eq!(cfg.app_rate_window, std::time::Duration::from_secs(7));
    }
}
