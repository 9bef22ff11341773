//! A server's `oauth` settings: how its OAuth client is set up. The flows themselves live in
//! `downstream::oauth`.

use std::path::PathBuf;

use crate::secret::Secret;

/// How a server's OAuth client is set up (the `oauth` object of a server's config).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OAuthConfig {
    /// A pre-registered client id; without it, a client-ID metadata document or dynamic
    /// registration is used.
    pub client_id: Option<String>,
    /// The pre-registered client's secret.
    pub client_secret: Option<Secret>,
    /// Scopes to ask for when neither the challenge nor the resource names any.
    pub scopes: Option<Vec<String>>,
    /// The URL of this client's metadata document, used as its id where the authorization
    /// server supports client-ID metadata documents.
    pub client_metadata_url: Option<String>,
    /// A PKCS#8 PEM EC P-256 key: with `client_id`, the client authenticates with signed
    /// assertions (`private_key_jwt`, RFC 7523) in the client-credentials grant.
    pub private_key_pem: Option<Secret>,
    /// A workload identity token (a JWT issued to this workload by a trusted issuer), for the
    /// JWT-bearer grant (RFC 7523, SEP-1933).
    pub assertion: Option<Secret>,
    /// A file holding the workload identity token, read at each use (the token rotates).
    pub assertion_file: Option<PathBuf>,
    /// Enterprise-managed authorization (SEP-990): the identity provider's token endpoint, where
    /// the user's ID token is exchanged (RFC 8693) for an identity assertion grant (ID-JAG) that
    /// then goes to the authorization server with the JWT-bearer grant.
    pub idp_token_endpoint: Option<String>,
    /// This client's id at the identity provider.
    pub idp_client_id: Option<String>,
    /// The user's ID token from the identity provider (or `id_token_file`, read at each use).
    pub id_token: Option<Secret>,
    pub id_token_file: Option<PathBuf>,
    /// The loopback port of the redirect listener (`pluggedin-mcp-proxy auth`); 0 picks one.
    pub redirect_port: u16,
    /// Follow the authorization endpoint's redirect ourselves instead of asking a user (for a
    /// server that approves without one, such as the conformance suite's).
    pub headless: bool,
}
