//! Property tests: every message encodes, splits off a buffer and decodes back to itself.

use kiwi::backend::{
    Authentication, BackendKeyData, CommandComplete, CopyDirection, CopyResponse, DataRow,
    ErrorFields, FieldDescription, FunctionCallResponse, NegotiateProtocolVersion,
    NotificationResponse, ParameterDescription, ParameterStatus, ReadyForQuery, RowDescription,
    TransactionStatus,
};
use kiwi::frontend::{
    AuthResponse, Bind, Close, CopyData, CopyFail, Describe, Execute, FunctionCall, Parse,
    PasswordMessage, Query, SaslInitialResponse, Target,
};
use kiwi::header::DEFAULT_MAX_MESSAGE;
use kiwi::startup::{CancelRequest, ProtocolVersion, Startup};
use kiwi::{BackendMessage, FrontendMessage, StartupPacket};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

/// A string as the protocol carries it: any bytes but NUL.
fn cstr() -> impl Strategy<Value = Vec<u8>> {
    vec(1u8..=255, 0..12)
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..24)
}

fn values() -> impl Strategy<Value = Vec<Option<Vec<u8>>>> {
    vec(option::of(bytes()), 0..6)
}

fn formats() -> impl Strategy<Value = Vec<i16>> {
    vec(any::<i16>(), 0..4)
}

fn borrowed(values: &[Option<Vec<u8>>]) -> Vec<Option<&[u8]>> {
    values.iter().map(Option::as_deref).collect()
}

fn frontend(m: FrontendMessage<'_>) {
    let mut out = vec![0xAA]; // bytes before the message must be left alone
    m.encode(&mut out);
    out.extend_from_slice(b"Q\x00\x00"); // and a partial message after it ignored
    let (back, used) = FrontendMessage::parse(&out[1..], DEFAULT_MAX_MESSAGE)
        .unwrap()
        .unwrap();
    assert_eq!(used, out.len() - 4);
    assert_eq!(back, m);
}

fn backend(m: BackendMessage<'_>) {
    let mut out = Vec::new();
    m.encode(&mut out);
    let (back, used) = BackendMessage::parse(&out, DEFAULT_MAX_MESSAGE)
        .unwrap()
        .unwrap();
    assert_eq!(used, out.len());
    assert_eq!(back, m);
}

fn startup(m: StartupPacket<'_>) {
    let mut out = Vec::new();
    m.encode(&mut out);
    let (back, used) = StartupPacket::parse(&out).unwrap().unwrap();
    assert_eq!(used, out.len());
    assert_eq!(back, m);
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![Just(Target::Statement), Just(Target::Portal)]
}

proptest! {
    #[test]
    fn query(sql in cstr()) {
        frontend(FrontendMessage::Query(Query { sql: &sql }));
    }

    #[test]
    fn parse(name in cstr(), query in cstr(), param_types in vec(any::<u32>(), 0..5)) {
        frontend(FrontendMessage::Parse(Parse { name: &name, query: &query, param_types }));
    }

    #[test]
    fn bind(portal in cstr(), statement in cstr(), pf in formats(), params in values(), rf in formats()) {
        frontend(FrontendMessage::Bind(Bind {
            portal: &portal,
            statement: &statement,
            param_formats: pf,
            params: borrowed(&params),
            result_formats: rf,
        }));
    }

    #[test]
    fn describe_and_close(target in target(), name in cstr()) {
        frontend(FrontendMessage::Describe(Describe { target, name: &name }));
        frontend(FrontendMessage::Close(Close { target, name: &name }));
    }

    #[test]
    fn execute(portal in cstr(), max_rows in any::<i32>()) {
        frontend(FrontendMessage::Execute(Execute { portal: &portal, max_rows }));
    }

    #[test]
    fn copy_from_client(data in bytes(), message in cstr()) {
        frontend(FrontendMessage::CopyData(CopyData { data: &data }));
        frontend(FrontendMessage::CopyFail(CopyFail { message: &message }));
    }

    #[test]
    fn function_call(function in any::<u32>(), af in formats(), args in values(), rf in any::<i16>()) {
        frontend(FrontendMessage::FunctionCall(FunctionCall {
            function,
            arg_formats: af,
            args: borrowed(&args),
            result_format: rf,
        }));
    }

    #[test]
    fn auth_responses(password in cstr(), mechanism in "[A-Z0-9-]{1,20}", data in option::of(bytes())) {
        let mut out = Vec::new();
        PasswordMessage { password: &password }.encode(&mut out);
        let Ok(Some((FrontendMessage::AuthResponse(r), _))) = FrontendMessage::parse(&out, 1 << 20) else {
            panic!("not an auth response");
        };
        prop_assert_eq!(r.password().unwrap().password, &password[..]);

        let initial = SaslInitialResponse { mechanism: &mechanism, data: data.as_deref() };
        out.clear();
        initial.encode(&mut out);
        let Ok(Some((FrontendMessage::AuthResponse(r), _))) = FrontendMessage::parse(&out, 1 << 20) else {
            panic!("not an auth response");
        };
        prop_assert_eq!(r.sasl_initial().unwrap(), initial);
        frontend(FrontendMessage::AuthResponse(AuthResponse { data: data.as_deref().unwrap_or_default() }));
    }

    #[test]
    fn authentication(code in 0usize..10, salt in any::<[u8; 4]>(), data in bytes(),
                      mechanisms in vec("[A-Z0-9-]{1,20}", 0..3)) {
        let m = match code {
            0 => Authentication::Ok,
            1 => Authentication::KerberosV5,
            2 => Authentication::CleartextPassword,
            3 => Authentication::Md5Password { salt },
            4 => Authentication::Gss,
            5 => Authentication::GssContinue { data: &data },
            6 => Authentication::Sspi,
            7 => Authentication::Sasl { mechanisms: mechanisms.iter().map(String::as_str).collect() },
            8 => Authentication::SaslContinue { data: &data },
            _ => Authentication::SaslFinal { data: &data },
        };
        backend(BackendMessage::Authentication(m));
    }

    #[test]
    fn backend_key_data(pid in any::<i32>(), key in vec(any::<u8>(), 4..=256)) {
        backend(BackendMessage::BackendKeyData(BackendKeyData { pid, key: &key }));
    }

    #[test]
    fn results(tag in cstr(), values in values(), types in vec(any::<u32>(), 0..5),
               names in vec(cstr(), 0..4), n in any::<(u32, i16, u32, i16, i32, i16)>()) {
        backend(BackendMessage::CommandComplete(CommandComplete { tag: &tag }));
        backend(BackendMessage::DataRow(DataRow { values: borrowed(&values) }));
        backend(BackendMessage::ParameterDescription(ParameterDescription { types }));
        let fields = names.iter().map(|name| FieldDescription {
            name, table_oid: n.0, column: n.1, type_oid: n.2, type_size: n.3, type_modifier: n.4, format: n.5,
        }).collect();
        backend(BackendMessage::RowDescription(RowDescription { fields }));
    }

    #[test]
    fn copy_from_server(direction in prop_oneof![Just(CopyDirection::In), Just(CopyDirection::Out), Just(CopyDirection::Both)],
                        format in any::<u8>(), column_formats in formats(), data in bytes()) {
        backend(BackendMessage::CopyResponse(CopyResponse { direction, format, column_formats }));
        backend(BackendMessage::CopyData(CopyData { data: &data }));
    }

    #[test]
    fn errors_and_notices(fields in vec((1u8..=255, cstr()), 0..6)) {
        let fields = ErrorFields { fields: fields.iter().map(|(k, v)| (*k, &v[..])).collect() };
        backend(BackendMessage::ErrorResponse(fields.clone()));
        backend(BackendMessage::NoticeResponse(fields));
    }

    #[test]
    fn small_backend_messages(result in option::of(bytes()), newest_minor in any::<u32>(),
                              names in vec(cstr(), 0..3), pid in any::<i32>(), a in cstr(), b in cstr(),
                              status in prop_oneof![Just(TransactionStatus::Idle), Just(TransactionStatus::InTransaction), Just(TransactionStatus::Failed)]) {
        backend(BackendMessage::FunctionCallResponse(FunctionCallResponse { result: result.as_deref() }));
        backend(BackendMessage::NegotiateProtocolVersion(NegotiateProtocolVersion {
            newest_minor,
            unrecognized: names.iter().map(Vec::as_slice).collect(),
        }));
        backend(BackendMessage::NotificationResponse(NotificationResponse { pid, channel: &a, payload: &b }));
        backend(BackendMessage::ParameterStatus(ParameterStatus { name: &a, value: &b }));
        backend(BackendMessage::ReadyForQuery(ReadyForQuery { status }));
    }

    #[test]
    fn startup_packets(minor in any::<u16>(), params in vec((vec(1u8..=255, 1..12), cstr()), 0..5),
                       pid in any::<i32>(), key in vec(any::<u8>(), 4..=256)) {
        let params = params.iter().map(|(n, v)| (&n[..], &v[..])).collect();
        startup(StartupPacket::Startup(Startup { version: ProtocolVersion { major: 3, minor }, params }));
        startup(StartupPacket::Cancel(CancelRequest { pid, key: &key }));
    }
}

#[test]
fn messages_without_a_body() {
    for m in [
        FrontendMessage::Sync,
        FrontendMessage::Flush,
        FrontendMessage::CopyDone,
        FrontendMessage::Terminate,
    ] {
        frontend(m);
    }
    for m in [
        BackendMessage::ParseComplete,
        BackendMessage::BindComplete,
        BackendMessage::CloseComplete,
        BackendMessage::CopyDone,
        BackendMessage::EmptyQueryResponse,
        BackendMessage::NoData,
        BackendMessage::PortalSuspended,
    ] {
        backend(m);
    }
    startup(StartupPacket::SslRequest);
    startup(StartupPacket::GssEncRequest);
}
