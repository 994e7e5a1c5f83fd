//! TLS for PostgreSQL connections, with libpq's `sslmode` meanings, on rustls
//! (pure Rust: no OpenSSL library or headers needed to build or run).
//!
//! | sslmode | TLS | server certificate |
//! | --- | --- | --- |
//! | disable | never | — |
//! | prefer | when the server offers it, else plain | not verified |
//! | require | always | not verified; verified as verify-ca when `sslrootcert` is set (as libpq) |
//! | verify-ca | always | chain verified against `sslrootcert` (default `~/.postgresql/root.crt`) |
//! | verify-full | always | verify-ca, and the certificate names the host |
//!
//! Unverified modes still check the handshake signatures, so the session is
//! encrypted with the key of the certificate presented; they only skip deciding
//! whether to trust that certificate, as libpq does.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{Error, Result};
use crate::settings::{Settings, SslMode};

/// The connector and tokio-postgres mode for `settings`. For a Unix socket, TLS
/// is off whatever the mode (PostgreSQL does not offer it there, libpq skips it).
pub(crate) fn connector(settings: &Settings) -> Result<(PgSslMode, MakeRustlsConnect)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let unix = settings.host.starts_with('/');
    let (mode, verify) = match settings.sslmode {
        _ if unix => (PgSslMode::Disable, Verify::None),
        SslMode::Disable => (PgSslMode::Disable, Verify::None),
        SslMode::Prefer => (PgSslMode::Prefer, Verify::None),
        SslMode::Require => match &settings.sslrootcert {
            Some(ca) => (PgSslMode::Require, Verify::Chain(ca.clone())),
            None => (PgSslMode::Require, Verify::None),
        },
        SslMode::VerifyCa => (PgSslMode::Require, Verify::Chain(root_cert(settings)?)),
        SslMode::VerifyFull => (PgSslMode::Require, Verify::Full(root_cert(settings)?)),
    };
    let verifier: Arc<dyn ServerCertVerifier> = match verify {
        Verify::None => Arc::new(Unverified(provider.clone())),
        Verify::Chain(ca) => Arc::new(ChainOnly(webpki(&ca, &provider)?)),
        Verify::Full(ca) => webpki(&ca, &provider)?,
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::runtime(format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok((mode, MakeRustlsConnect::new(config)))
}

enum Verify {
    None,
    Chain(PathBuf),
    Full(PathBuf),
}

/// `sslrootcert`, else libpq's default `~/.postgresql/root.crt`.
fn root_cert(settings: &Settings) -> Result<PathBuf> {
    if let Some(p) = &settings.sslrootcert {
        return Ok(p.clone());
    }
    let default = std::env::var_os("HOME")
        .map(|h| Path::new(&h).join(".postgresql").join("root.crt"))
        .filter(|p| p.is_file());
    default.ok_or_else(|| {
        Error::usage(
            "sslmode verify-ca and verify-full need the CA certificate that signed the server's: set sslrootcert to its PEM file (or put it in ~/.postgresql/root.crt)",
        )
    })
}

/// A verifier of the chain and host name against the CAs of `ca`.
fn webpki(ca: &Path, provider: &Arc<CryptoProvider>) -> Result<Arc<WebPkiServerVerifier>> {
    let shown = ca.display();
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca)
        .map_err(|e| Error::usage(format!("sslrootcert {shown}: cannot read it: {e}")))?;
    for cert in certs {
        let cert = cert.map_err(|e| {
            Error::usage(format!(
                "sslrootcert {shown}: not a PEM certificate file: {e}"
            ))
        })?;
        roots
            .add(cert)
            .map_err(|e| Error::usage(format!("sslrootcert {shown}: unusable certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(Error::usage(format!(
            "sslrootcert {shown}: no certificate in it; give the PEM file of the CA"
        )));
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| Error::usage(format!("sslrootcert {shown}: {e}")))
}

/// `prefer`/`require`: any certificate is accepted (signatures still checked).
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted CA; the host name is not checked.
/// webpki checks the chain before the name, so a name mismatch means the chain
/// was good.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
