//! `virtual_processing` (spec §7.10): `SET odyssey.target_session_attrs` and `SHOW
//! odyssey.target_session_attrs` are answered by the pooler, in upstream's words (a NOTICE
//! `processed virtually by odyssey` with each answer). The value set decides which servers the
//! client gets from its next attach on (`frontend` moves it to the route of that kind).

use kiwi::backend::{
    CommandComplete, DataRow, ErrorFields, FieldDescription, ReadyForQuery, RowDescription,
    TransactionStatus, field,
};
use kiwi::frontend::tag as fe;
use kiwi::header::Frame;
use kiwi::sqlstate;

use super::{ClientStep, MAX_MESSAGE, Relay};
use crate::config::storage::TargetSessionAttrs as Tsa;
use crate::sql::{self, Statement};

/// The parameter the pooler answers for.
pub const NAME: &str = "odyssey.target_session_attrs";

/// The NOTICE upstream sends with each virtual answer.
const PROCESSED: &str = "processed virtually by odyssey";

/// OID of `text`, the type of the SHOW column.
const TEXT_OID: u32 = 25;

impl Relay {
    /// The client's target_session_attrs under `virtual_processing` (`None` without it).
    pub fn target_session_attrs(&self) -> Option<Tsa> {
        self.tsa
    }

    /// Answers a whole Query that sets or shows the parameter, when nothing else is in flight
    /// (so the answer cannot overtake the server's); the transaction status in its
    /// ReadyForQuery is `tx`.
    pub(super) fn virtual_tsa(&mut self, buf: &[u8], tx: TransactionStatus) -> Option<ClientStep> {
        let current = self.tsa?;
        if !self.client_scan.at_boundary() || self.pending > 0 || self.unsynced {
            return None;
        }
        let (frame, _) = Frame::split(buf, MAX_MESSAGE).ok().flatten()?;
        if frame.tag() != fe::QUERY {
            return None;
        }
        let mut client = Vec::new();
        match sql::classify(frame.body) {
            Statement::Set { name, value } if name.eq_ignore_ascii_case(NAME) => {
                match Tsa::from_name(&value.to_ascii_lowercase()) {
                    Some(tsa) => {
                        self.tsa = Some(tsa);
                        notice(&mut client);
                        CommandComplete { tag: b"SET" }.encode(&mut client);
                    }
                    None => {
                        let text = format!("invalid value for parameter \"{NAME}\": \"{value}\"");
                        error(&mut client, &text);
                        notice(&mut client);
                    }
                }
            }
            Statement::Show(name) if name.eq_ignore_ascii_case(NAME) => {
                notice(&mut client);
                show(&mut client, current.name());
            }
            _ => return None,
        }
        ReadyForQuery { status: tx }.encode(&mut client);
        Some(ClientStep::Rewrite {
            used: frame.bytes.len(),
            server: Vec::new(),
            client,
        })
    }
}

/// The NOTICE, with SQLSTATE 00000 (upstream sends none, which some drivers refuse).
fn notice(out: &mut Vec<u8>) {
    ErrorFields {
        fields: vec![
            (field::SEVERITY, b"NOTICE".as_slice()),
            (field::CODE, b"00000".as_slice()),
            (field::MESSAGE, PROCESSED.as_bytes()),
        ],
    }
    .encode_notice(out);
}

/// An ERROR 22023 as upstream words it (without the client id prefix).
fn error(out: &mut Vec<u8>, text: &str) {
    let code = sqlstate::INVALID_PARAMETER_VALUE;
    ErrorFields {
        fields: vec![
            (field::SEVERITY, b"ERROR".as_slice()),
            (field::CODE, code.as_str().as_bytes()),
            (field::MESSAGE, text.as_bytes()),
        ],
    }
    .encode_error(out);
}

/// One text column named after the parameter, one row, `SHOW`.
fn show(out: &mut Vec<u8>, value: &str) {
    RowDescription {
        fields: vec![FieldDescription {
            name: NAME.as_bytes(),
            table_oid: 0,
            column: 0,
            type_oid: TEXT_OID,
            type_size: -1,
            type_modifier: -1,
            format: 0,
        }],
    }
    .encode(out);
    DataRow {
        values: vec![Some(value.as_bytes())],
    }
    .encode(out);
    CommandComplete { tag: b"SHOW" }.encode(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PoolMode;
    use crate::relay::harness;
    use crate::relay::tests::query;

    fn answer(relay: &mut Relay, sql: &str) -> Option<Vec<u8>> {
        let buf = query(sql);
        match relay.client(&buf, None) {
            Ok(ClientStep::Rewrite { used, client, .. }) if used == buf.len() => Some(client),
            _ => None,
        }
    }

    #[test]
    fn set_and_show_are_answered_and_change_the_value() {
        let mut settings = harness::settings(PoolMode::Transaction, false);
        settings.target_session_attrs = Some(Tsa::Any);
        let mut relay = Relay::new(settings);
        let shown = answer(&mut relay, "SHOW odyssey.target_session_attrs").expect("show");
        assert!(shown.windows(3).any(|w| w == b"any"));
        assert!(
            answer(
                &mut relay,
                "set odyssey.target_session_attrs to 'READ-ONLY'"
            )
            .is_some()
        );
        assert_eq!(relay.target_session_attrs(), Some(Tsa::ReadOnly));
        let refused = answer(&mut relay, "SET odyssey.target_session_attrs = 'x'").expect("error");
        assert!(refused.windows(5).any(|w| w == b"22023"));
        assert_eq!(relay.target_session_attrs(), Some(Tsa::ReadOnly));
        assert!(answer(&mut relay, "SHOW work_mem").is_none());
    }

    #[test]
    fn without_virtual_processing_they_need_a_server() {
        let mut relay = Relay::new(harness::settings(PoolMode::Transaction, false));
        assert!(answer(&mut relay, "SHOW odyssey.target_session_attrs").is_none());
        assert_eq!(relay.target_session_attrs(), None);
    }
}
