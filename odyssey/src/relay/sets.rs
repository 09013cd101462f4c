//! SETs of tracked parameters on their way through a session: a SET the client sends takes
//! effect when PostgreSQL completes it outside a transaction block, or when the transaction
//! commits; a failed or rolled-back SET never does. Only then does the value follow the client
//! to its next server.

use std::collections::VecDeque;

use kiwi::backend::TransactionStatus;

/// A tracked parameter and the value a client set.
pub type Setting = (String, String);

/// Tracked SETs sent and not yet in effect.
#[derive(Debug, Default)]
pub struct SetTracker {
    /// Sent to the server, in order; waiting for their CommandComplete.
    sent: VecDeque<Setting>,
    /// Completed inside a transaction block; in effect if it commits.
    in_transaction: Vec<Setting>,
}

impl SetTracker {
    /// The client sent `SET name = value` (one statement, tracked name).
    pub fn sent(&mut self, setting: Setting) {
        self.sent.push_back(setting);
    }

    /// A CommandComplete `SET` arrived while the session was in `tx`. Returns the setting
    /// to apply now (outside a transaction), and whether the completion was a tracked SET at
    /// all (an untracked one leaves state the pooler cannot carry over).
    pub fn completed(&mut self, tx: TransactionStatus) -> (Option<Setting>, bool) {
        let Some(setting) = self.sent.pop_front() else {
            return (None, false);
        };
        if tx == TransactionStatus::Idle {
            (Some(setting), true)
        } else {
            self.in_transaction.push(setting);
            (None, true)
        }
    }

    /// A COMMIT completed: the transaction's SETs take effect.
    pub fn committed(&mut self) -> Vec<Setting> {
        std::mem::take(&mut self.in_transaction)
    }

    /// ReadyForQuery: SETs still waiting for a completion failed; at `Idle`, the transaction
    /// ended without a COMMIT (rolled back or failed), so its SETs are void.
    pub fn ready(&mut self, status: TransactionStatus) {
        self.sent.clear();
        if status == TransactionStatus::Idle {
            self.in_transaction.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TransactionStatus::{Idle, InTransaction};

    fn s(v: &str) -> Setting {
        ("statement_timeout".into(), v.into())
    }

    #[test]
    fn autocommit_set_applies_at_once() {
        let mut t = SetTracker::default();
        t.sent(s("1s"));
        assert_eq!(t.completed(Idle), (Some(s("1s")), true));
    }

    #[test]
    fn set_in_a_transaction_applies_at_commit_only() {
        let mut t = SetTracker::default();
        t.sent(s("2s"));
        assert_eq!(t.completed(InTransaction), (None, true));
        t.ready(InTransaction);
        assert_eq!(t.committed(), vec![s("2s")]);
        t.sent(s("3s"));
        t.completed(InTransaction);
        t.ready(Idle);
        assert!(t.committed().is_empty(), "a rolled back SET is void");
    }

    #[test]
    fn failed_set_is_forgotten_and_untracked_completions_say_so() {
        let mut t = SetTracker::default();
        t.sent(s("soon"));
        t.ready(Idle);
        assert_eq!(t.completed(Idle), (None, false));
    }
}
