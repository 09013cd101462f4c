//! SCRAM tests: the RFC 7677 vector, both roles against each other, channel binding, failures.

use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::{X509, X509NameBuilder};

use super::*;

const RFC_CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const RFC_SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const RFC_SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
const RFC_SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const RFC_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const RFC_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn rfc_verifier() -> ScramVerifier {
    let salt = base64_decode(RFC_SALT).unwrap();
    ScramVerifier::from_password(b"pencil", &salt, 4096).unwrap()
}

#[test]
fn rfc7677_client() {
    let mut client = ScramClient::with_nonce(b"pencil", "user", RFC_CLIENT_NONCE);
    assert_eq!(client.mechanism(), SCRAM_SHA_256);
    assert_eq!(client.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    let client_final = client
        .handle_server_first(RFC_SERVER_FIRST.as_bytes())
        .unwrap();
    assert_eq!(String::from_utf8(client_final).unwrap(), RFC_CLIENT_FINAL);
    client
        .verify_server_final(RFC_SERVER_FINAL.as_bytes())
        .unwrap();
    assert!(client.is_done());
}

#[test]
fn rfc7677_server() {
    let mut server = ScramServer::new(rfc_verifier()).with_server_nonce(RFC_SERVER_NONCE);
    let server_first = server
        .handle_client_first(SCRAM_SHA_256, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        .unwrap();
    assert_eq!(String::from_utf8(server_first).unwrap(), RFC_SERVER_FIRST);
    let server_final = server
        .handle_client_final(RFC_CLIENT_FINAL.as_bytes())
        .unwrap();
    assert_eq!(String::from_utf8(server_final).unwrap(), RFC_SERVER_FINAL);
    assert!(server.is_done());
}

/// Runs a whole exchange; returns the server for inspection.
fn exchange(client: &mut ScramClient, server: &mut ScramServer) -> Result<(), ScramError> {
    let first = client.client_first();
    let server_first = server.handle_client_first(client.mechanism(), &first)?;
    let client_final = client.handle_server_first(&server_first)?;
    let server_final = server.handle_client_final(&client_final)?;
    client.verify_server_final(&server_final)
}

#[test]
fn client_and_server_agree_with_random_nonces() {
    let mut server = ScramServer::from_secret("secret").unwrap();
    let mut client = ScramClient::new(b"secret").unwrap();
    exchange(&mut client, &mut server).unwrap();
    assert!(server.keys().is_some());
}

#[test]
fn wrong_password_is_an_invalid_proof() {
    let mut server = ScramServer::new(rfc_verifier());
    let mut client = ScramClient::new(b"pencils").unwrap();
    assert!(matches!(
        exchange(&mut client, &mut server),
        Err(ScramError::InvalidProof)
    ));
    assert!(server.keys().is_none());
    // A failed exchange cannot go on.
    assert!(matches!(
        server.handle_client_final(b""),
        Err(ScramError::OutOfOrder { .. })
    ));
}

#[test]
fn client_rejects_a_forged_server_signature_and_server_errors() {
    let mut client = ScramClient::with_nonce(b"pencil", "user", RFC_CLIENT_NONCE);
    client.client_first();
    client
        .handle_server_first(RFC_SERVER_FIRST.as_bytes())
        .unwrap();
    let forged = "v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    assert!(matches!(
        client.verify_server_final(forged.as_bytes()),
        Err(ScramError::InvalidServerSignature)
    ));
    match client.verify_server_final(b"e=invalid-proof") {
        Err(ScramError::Server { reason }) => assert_eq!(reason, "invalid-proof"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn client_rejects_a_nonce_the_server_changed() {
    let mut client = ScramClient::with_nonce(b"pencil", "user", RFC_CLIENT_NONCE);
    client.client_first();
    let bad = RFC_SERVER_FIRST.replace("rOpr", "xOpr");
    assert!(matches!(
        client.handle_server_first(bad.as_bytes()),
        Err(ScramError::NonceMismatch)
    ));
    // The server must add to the client's nonce.
    let mut client = ScramClient::with_nonce(b"pencil", "user", RFC_CLIENT_NONCE);
    client.client_first();
    let same = "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    assert!(matches!(
        client.handle_server_first(same.as_bytes()),
        Err(ScramError::NonceMismatch)
    ));
}

#[test]
fn server_rejects_bad_client_first() {
    let first = |mechanism: &str, data: &str| {
        ScramServer::new(rfc_verifier()).handle_client_first(mechanism, data.as_bytes())
    };
    assert!(matches!(
        first("PLAIN", "n,,n=,r=abc"),
        Err(ScramError::UnsupportedMechanism { .. })
    ));
    assert!(matches!(
        first(SCRAM_SHA_256, "n,a=bob,n=,r=abc"),
        Err(ScramError::AuthorizationIdentity)
    ));
    assert!(matches!(
        first(SCRAM_SHA_256, "n,,m=ext,n=,r=abc"),
        Err(ScramError::MandatoryExtension)
    ));
    assert!(matches!(
        first(SCRAM_SHA_256, "n,,n=,r="),
        Err(ScramError::Malformed { .. })
    ));
    assert!(matches!(
        first(SCRAM_SHA_256, "n,,n="),
        Err(ScramError::Malformed { .. })
    ));
    assert!(matches!(
        first(SCRAM_SHA_256, "x"),
        Err(ScramError::Malformed { .. })
    ));
    assert!(matches!(
        first(SCRAM_SHA_256, "p=tls-server-end-point,,n=,r=abc"),
        Err(ScramError::ChannelBinding { .. })
    ));
    // -PLUS was not offered: the client has no TLS.
    assert!(matches!(
        first(SCRAM_SHA_256_PLUS, "p=tls-server-end-point,,n=,r=abc"),
        Err(ScramError::UnsupportedMechanism { .. })
    ));
}

#[test]
fn server_rejects_tampered_client_final() {
    let start = || {
        let mut server = ScramServer::new(rfc_verifier()).with_server_nonce(RFC_SERVER_NONCE);
        server
            .handle_client_first(SCRAM_SHA_256, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
            .unwrap();
        server
    };
    let nonce_changed = RFC_CLIENT_FINAL.replace("k0,p=", "k1,p=");
    assert!(matches!(
        start().handle_client_final(nonce_changed.as_bytes()),
        Err(ScramError::NonceMismatch)
    ));
    let binding_changed = RFC_CLIENT_FINAL.replace("c=biws", "c=eSws");
    assert!(matches!(
        start().handle_client_final(binding_changed.as_bytes()),
        Err(ScramError::ChannelBinding { .. })
    ));
    let short_proof = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA";
    assert!(matches!(
        start().handle_client_final(short_proof.as_bytes()),
        Err(ScramError::Malformed { .. })
    ));
}

/// A self-signed certificate signed with `digest`, as DER.
fn certificate(digest: MessageDigest) -> Vec<u8> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "kiwi-test").unwrap();
    let name = name.build();
    let mut cert = X509::builder().unwrap();
    cert.set_version(2).unwrap();
    cert.set_subject_name(&name).unwrap();
    cert.set_issuer_name(&name).unwrap();
    cert.set_pubkey(&key).unwrap();
    cert.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    cert.set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    cert.sign(&key, digest).unwrap();
    cert.build().to_der().unwrap()
}

#[test]
fn end_point_hash_follows_the_signature_digest() {
    let der = certificate(MessageDigest::sha256());
    assert_eq!(
        tls_server_end_point(&der).unwrap(),
        openssl::sha::sha256(&der).to_vec()
    );
    let der = certificate(MessageDigest::sha384());
    assert_eq!(
        tls_server_end_point(&der).unwrap(),
        openssl::sha::sha384(&der).to_vec()
    );
    // SHA-1 signatures are hashed with SHA-256 (RFC 5929).
    let der = certificate(MessageDigest::sha1());
    assert_eq!(
        tls_server_end_point(&der).unwrap(),
        openssl::sha::sha256(&der).to_vec()
    );
    assert!(matches!(
        tls_server_end_point(b"not a cert"),
        Err(ScramError::Crypto(_))
    ));
}

#[test]
fn plus_binds_to_the_certificate() {
    let hash = tls_server_end_point(&certificate(MessageDigest::sha256())).unwrap();
    let mut server = ScramServer::from_password(b"pw")
        .unwrap()
        .channel_binding(hash.clone());
    assert_eq!(server.mechanisms(), vec![SCRAM_SHA_256_PLUS, SCRAM_SHA_256]);
    let mut client = ScramClient::new(b"pw")
        .unwrap()
        .select(&server.mechanisms(), Some(&hash))
        .unwrap();
    assert_eq!(client.mechanism(), SCRAM_SHA_256_PLUS);
    exchange(&mut client, &mut server).unwrap();

    // A client that sees another certificate (a man in the middle) fails.
    let other = tls_server_end_point(&certificate(MessageDigest::sha256())).unwrap();
    let mut server = ScramServer::from_password(b"pw")
        .unwrap()
        .channel_binding(hash.clone());
    let mut client = ScramClient::new(b"pw")
        .unwrap()
        .select(&server.mechanisms(), Some(&other))
        .unwrap();
    assert!(matches!(
        exchange(&mut client, &mut server),
        Err(ScramError::ChannelBinding { .. })
    ));

    // A client on TLS that was shown no -PLUS says `y`; a server that offered -PLUS refuses.
    let mut server = ScramServer::from_password(b"pw")
        .unwrap()
        .channel_binding(hash.clone());
    let mut client = ScramClient::new(b"pw")
        .unwrap()
        .select(&[SCRAM_SHA_256], Some(&hash))
        .unwrap();
    assert_eq!(client.client_first()[0], b'y');
    assert!(matches!(
        exchange(&mut client, &mut server),
        Err(ScramError::ChannelBinding { .. })
    ));

    // Without -PLUS on offer, `y` is fine.
    let mut server = ScramServer::from_password(b"pw").unwrap();
    let mut client = ScramClient::new(b"pw")
        .unwrap()
        .select(&[SCRAM_SHA_256], Some(&hash))
        .unwrap();
    exchange(&mut client, &mut server).unwrap();
}

#[test]
fn keys_from_one_login_open_another() {
    let verifier = ScramVerifier::generate(b"pw").unwrap();
    let mut front = ScramServer::new(verifier.clone());
    exchange(&mut ScramClient::new(b"pw").unwrap(), &mut front).unwrap();
    let keys = front.keys().unwrap();
    let mut back = ScramServer::new(verifier);
    let mut client = ScramClient::with_keys(keys).unwrap();
    exchange(&mut client, &mut back).unwrap();
}

#[test]
fn verifier_parses_and_prints_postgres_form() {
    let v = rfc_verifier();
    let text = v.to_string();
    assert!(text.starts_with("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"));
    assert_eq!(ScramVerifier::parse(&text).unwrap(), v);
    assert!(ScramVerifier::is_verifier(&text));
    assert!(!ScramVerifier::is_verifier("pencil"));
    for bad in [
        "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==",
        "SCRAM-SHA-256$x:W22ZaJ0SNY7soEsUEjb6gQ==$AAAA:AAAA",
        "SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==$AAAA:AAAA",
        "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$AAAA:AAAA",
        "SCRAM-SHA-256$4096:!!$AAAA:AAAA",
        "md5abc",
    ] {
        assert!(
            matches!(
                ScramVerifier::parse(bad),
                Err(ScramError::InvalidVerifier { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn steps_out_of_order_are_errors() {
    let mut client = ScramClient::new(b"pw").unwrap();
    assert!(matches!(
        client.handle_server_first(b"r=x"),
        Err(ScramError::OutOfOrder { .. })
    ));
    assert!(matches!(
        client.verify_server_final(b"v=x"),
        Err(ScramError::OutOfOrder { .. })
    ));
    let mut server = ScramServer::from_password(b"pw").unwrap();
    assert!(matches!(
        server.handle_client_final(b"c=biws"),
        Err(ScramError::OutOfOrder { .. })
    ));
}

/// HMAC-SHA-256 against RFC 4231: a short key (case 2), and one longer than the block,
/// hashed first (case 6); parts are concatenated.
#[test]
fn hmac_matches_rfc_4231() {
    let hex = |k: &Key| k.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let short = hmac_parts(b"Jefe", &[b"what do ya want ", b"for nothing?"]).unwrap();
    assert_eq!(
        hex(&short),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    let long = hmac(
        &[0xaa; 131],
        b"Test Using Larger Than Block-Size Key - Hash Key First",
    )
    .unwrap();
    assert_eq!(
        hex(&long),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}
