//! Room tickets: which room a `token` admits its bearer to.
//!
//! Production: the token is a JWT signed by the game's backend, verified
//! with `jwt-simple`. The algorithm is pinned by the key type (an HS256 key
//! refuses an EdDSA or `none` token and vice versa), `room` and `exp` are
//! required, `sub` (when present) must equal the peer id, `nbf`/`iat` are
//! honoured, `iss`/`aud` are checked when configured, and the clock
//! tolerance is seconds, not jwt-simple's 15-minute default.
//!
//! Local dev (no key): the token is the room id itself.
//!
//! `now` comes from the caller, through jwt-simple's `artificial_time`.

use jwt_simple::prelude::*;
use jwt_simple::JWTError;
use std::collections::HashSet;

/// Verification key; the variant pins the algorithm. Boxed: the keys are
/// large and a policy is built once per isolate.
pub enum TicketKey {
    Hs256(Box<HS256Key>),
    EdDsa(Box<Ed25519PublicKey>),
}

/// How `token` is turned into a room.
pub enum TicketPolicy {
    /// Dev mode: `token` is the room id.
    RoomIdIsToken,
    Signed {
        key: TicketKey,
        issuer: Option<String>,
        audience: Option<String>,
        leeway_secs: u64,
        limits: TicketLimits,
    },
}

/// What a signed ticket must also satisfy beyond its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketLimits {
    /// `TICKET_MAX_LIFETIME_SECS`: `exp` at most this far after now, so a
    /// leaked ticket is worth hours, not years.
    pub max_lifetime_secs: u64,
    /// `TICKET_REQUIRE_SUB`: every room ticket must name its peer id in `sub`.
    pub require_sub: bool,
}

/// Default `TICKET_MAX_LIFETIME_SECS`: four hours, a long game session.
pub const DEFAULT_TICKET_MAX_LIFETIME_SECS: u64 =
    crate::settings::TICKET_MAX_LIFETIME_SECS.number_default();

impl Default for TicketLimits {
    fn default() -> Self {
        TicketLimits {
            max_lifetime_secs: DEFAULT_TICKET_MAX_LIFETIME_SECS,
            require_sub: false,
        }
    }
}

/// What a valid token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomGrant {
    pub room: String,
    /// The ticket named this peer id in `sub`: the bearer owns the id.
    pub proves_id: bool,
    /// A digest naming the ticket itself: its `jti` when it has one (a
    /// backend's one ticket per player session), else the whole ticket. A
    /// moderator's block covers it, so a ticket that names no id cannot
    /// bring a removed player straight back under another id. `None` when
    /// tickets are off (a room id is shared by the whole room).
    pub holder: Option<String>,
}

/// What a verified token says.
struct Verified {
    room: String,
    sub: Option<String>,
    holder: Option<String>,
}

/// Why a token was refused; the text is what the stock client shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("Invalid room id: use 1-64 letters, digits, '_' or '-'")]
    BadRoomId,
    #[error("Invalid room ticket: expired")]
    Expired,
    #[error("Invalid room ticket: not valid yet")]
    NotYetValid,
    #[error("Invalid room ticket: bad signature")]
    BadSignature,
    #[error("Invalid room ticket: wrong algorithm")]
    WrongAlgorithm,
    #[error("Invalid room ticket: wrong issuer")]
    WrongIssuer,
    #[error("Invalid room ticket: wrong audience")]
    WrongAudience,
    #[error("Invalid room ticket: no expiry")]
    MissingExpiry,
    #[error("Invalid room ticket: no iat (issued-at)")]
    MissingIssuedAt,
    #[error("Invalid room ticket: expires more than {0} s from now")]
    LivesTooLong(u64),
    #[error("Invalid room ticket: no sub (this server needs the peer id in sub)")]
    SubjectRequired,
    #[error("Invalid room ticket: no room")]
    MissingRoom,
    #[error("Invalid room ticket: the room is not a valid room id")]
    BadRoomClaim,
    #[error("Invalid room ticket: issued for another peer id")]
    SubjectMismatch,
    #[error("Invalid ticket: no sub (the open namespace needs the peer id in sub)")]
    MissingSubject,
    #[error("Invalid ticket: a room ticket cannot prove a peer id in the open namespace (mint one without room)")]
    RoomTicket,
    #[error("Invalid room ticket: too long")]
    TooLong,
    #[error("Invalid room ticket: not a JWT")]
    Malformed,
}

/// Claims beyond the registered ones.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RoomClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
}

impl TicketPolicy {
    /// Decides which room `token` admits peer `id` to, at `now_secs`.
    pub fn admit(&self, token: &str, id: &str, now_secs: u64) -> Result<RoomGrant, TicketError> {
        let Verified { room, sub, holder } = self.verify(token, now_secs)?;
        let require_sub = matches!(self, TicketPolicy::Signed { limits, .. } if limits.require_sub);
        let proves_id = match sub.as_deref() {
            None if require_sub => return Err(TicketError::SubjectRequired),
            None => false,
            Some(sub) if sub == id => true,
            Some(_) => return Err(TicketError::SubjectMismatch),
        };
        Ok(RoomGrant {
            room,
            proves_id,
            holder,
        })
    }

    /// The room a token names, for reading that room's roster. `sub` is not
    /// checked here: reading the roster claims no identity.
    pub fn room_of(&self, token: &str, now_secs: u64) -> Result<String, TicketError> {
        self.verify(token, now_secs).map(|v| v.room)
    }

    /// The open namespace: does `token` prove that its bearer owns `id`?
    /// With signed tickets it must be a valid ticket whose `sub` is `id` and
    /// that names no `room` (a ticket for one room must not own the id in
    /// the whole namespace); without, the token is the client's own secret
    /// and proves nothing (`Ok(false)`).
    pub fn prove_id(&self, token: &str, id: &str, now_secs: u64) -> Result<bool, TicketError> {
        if !self.is_signed() {
            return Ok(false);
        }
        let claims = self.verify_signed(token, now_secs)?;
        if claims.custom.room.is_some() {
            return Err(TicketError::RoomTicket);
        }
        match claims.subject.as_deref() {
            Some(sub) if sub == id => Ok(true),
            Some(_) => Err(TicketError::SubjectMismatch),
            None => Err(TicketError::MissingSubject),
        }
    }

    /// Verifies the token: its room, its `sub` and the ticket's digest.
    fn verify(&self, token: &str, now_secs: u64) -> Result<Verified, TicketError> {
        if !self.is_signed() {
            if !crate::ids::is_valid_room_id(token) {
                return Err(TicketError::BadRoomId);
            }
            return Ok(Verified {
                room: token.to_owned(),
                sub: None,
                holder: None,
            });
        }
        let claims = self.verify_signed(token, now_secs)?;
        let room = claims.custom.room.ok_or(TicketError::MissingRoom)?;
        if !crate::ids::is_valid_room_id(&room) {
            return Err(TicketError::BadRoomClaim);
        }
        let holder = match &claims.jwt_id {
            Some(jti) => crate::secret::sha256_hex(&format!("jti:{jti}")),
            None => crate::secret::sha256_hex(&format!("ticket:{token}")),
        };
        Ok(Verified {
            room,
            sub: claims.subject,
            holder: Some(holder),
        })
    }

    /// Checks a signed ticket's signature, algorithm, times, issuer and
    /// audience; the claims are the caller's to read.
    fn verify_signed(
        &self,
        token: &str,
        now_secs: u64,
    ) -> Result<JWTClaims<RoomClaims>, TicketError> {
        let (key, issuer, audience, leeway_secs, limits) = match self {
            TicketPolicy::RoomIdIsToken => return Err(TicketError::Malformed),
            TicketPolicy::Signed {
                key,
                issuer,
                audience,
                leeway_secs,
                limits,
            } => (key, issuer, audience, *leeway_secs, limits),
        };
        if token.len() > crate::query::MAX_TOKEN_BYTES {
            return Err(TicketError::TooLong);
        }
        let options = VerificationOptions {
            time_tolerance: Some(Duration::from_secs(leeway_secs)),
            artificial_time: Some(UnixTimeStamp::from_secs(now_secs)),
            allowed_issuers: issuer.as_ref().map(|i| HashSet::from([i.clone()])),
            allowed_audiences: audience.as_ref().map(|a| HashSet::from([a.clone()])),
            max_token_length: Some(crate::query::MAX_TOKEN_BYTES),
            ..VerificationOptions::default()
        };
        let verified = match key {
            TicketKey::Hs256(k) => k.verify_token::<RoomClaims>(token, Some(options)),
            TicketKey::EdDsa(k) => k.verify_token::<RoomClaims>(token, Some(options)),
        };
        let claims = verified.map_err(classify)?;
        let Some(expires_at) = claims.expires_at else {
            return Err(TicketError::MissingExpiry);
        };
        if claims.issued_at.is_none() {
            return Err(TicketError::MissingIssuedAt);
        }
        if expires_at.as_secs() > now_secs + limits.max_lifetime_secs + leeway_secs {
            return Err(TicketError::LivesTooLong(limits.max_lifetime_secs));
        }
        Ok(claims)
    }

    /// True when tokens must be signed tickets.
    pub fn is_signed(&self) -> bool {
        matches!(self, TicketPolicy::Signed { .. })
    }
}

fn classify(err: jwt_simple::Error) -> TicketError {
    match err.downcast_ref::<JWTError>() {
        Some(JWTError::TokenHasExpired) => TicketError::Expired,
        Some(JWTError::TokenNotValidYet | JWTError::ClockDrift) => TicketError::NotYetValid,
        Some(JWTError::InvalidSignature | JWTError::InvalidAuthenticationTag) => {
            TicketError::BadSignature
        }
        Some(JWTError::AlgorithmMismatch) => TicketError::WrongAlgorithm,
        Some(JWTError::RequiredIssuerMismatch | JWTError::RequiredIssuerMissing) => {
            TicketError::WrongIssuer
        }
        Some(JWTError::RequiredAudienceMismatch | JWTError::RequiredAudienceMissing) => {
            TicketError::WrongAudience
        }
        Some(JWTError::TokenTooLong) => TicketError::TooLong,
        _ => TicketError::Malformed,
    }
}

/// What a minted ticket says.
#[derive(Debug, Clone, Default)]
pub struct TicketClaims {
    pub room: Option<String>,
    pub sub: Option<String>,
    pub exp_secs: Option<u64>,
    pub nbf_secs: Option<u64>,
    pub iat_secs: Option<u64>,
    pub iss: Option<String>,
    pub aud: Option<String>,
    pub jti: Option<String>,
}

/// Signs an HS256 ticket, for the `mint-ticket` tool and tests.
pub fn mint_hs256(secret: &[u8], claims: &TicketClaims) -> Result<String, TicketError> {
    let key = HS256Key::from_bytes(secret);
    key.authenticate(to_jwt_claims(claims))
        .map_err(|_| TicketError::Malformed)
}

/// Signs an EdDSA ticket with an Ed25519 key pair given as PEM.
pub fn mint_eddsa(private_pem: &str, claims: &TicketClaims) -> Result<String, TicketError> {
    let key = Ed25519KeyPair::from_pem(private_pem).map_err(|_| TicketError::Malformed)?;
    key.sign(to_jwt_claims(claims))
        .map_err(|_| TicketError::Malformed)
}

fn to_jwt_claims(c: &TicketClaims) -> JWTClaims<RoomClaims> {
    JWTClaims {
        issued_at: c.iat_secs.map(UnixTimeStamp::from_secs),
        expires_at: c.exp_secs.map(UnixTimeStamp::from_secs),
        invalid_before: c.nbf_secs.map(UnixTimeStamp::from_secs),
        audiences: c.aud.clone().map(Audiences::AsString),
        issuer: c.iss.clone(),
        jwt_id: c.jti.clone(),
        subject: c.sub.clone(),
        nonce: None,
        custom: RoomClaims {
            room: c.room.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_800_000_000;

    fn hs_policy() -> TicketPolicy {
        TicketPolicy::Signed {
            key: TicketKey::Hs256(Box::new(HS256Key::from_bytes(SECRET))),
            issuer: None,
            audience: None,
            leeway_secs: 5,
            limits: TicketLimits::default(),
        }
    }

    fn claims(room: &str) -> TicketClaims {
        TicketClaims {
            room: Some(room.to_owned()),
            exp_secs: Some(NOW + 60),
            iat_secs: Some(NOW),
            ..TicketClaims::default()
        }
    }

    fn mint(c: &TicketClaims) -> String {
        mint_hs256(SECRET, c).expect("mint")
    }

    #[test]
    fn a_grant_names_its_ticket_by_jti_or_else_by_the_whole_ticket() {
        let p = hs_policy();
        let holder = |c: &TicketClaims| p.admit(&mint(c), "a", NOW).map(|g| g.holder);
        let session = TicketClaims {
            jti: Some("session-7".into()),
            ..claims("r")
        };
        let reissued = TicketClaims {
            iat_secs: Some(NOW - 1),
            ..session.clone()
        };
        // One jti, one holder, however often the backend re-signs it.
        assert_eq!(holder(&session), holder(&reissued));
        assert!(holder(&session).is_ok_and(|h| h.is_some()));
        // Without a jti, each ticket is its own holder.
        let plain = claims("r");
        let other = TicketClaims {
            iat_secs: Some(NOW - 1),
            ..claims("r")
        };
        assert_ne!(holder(&plain), holder(&other));
        assert_ne!(holder(&plain), holder(&session));
    }

    #[test]
    fn dev_mode_uses_the_token_as_the_room() {
        let p = TicketPolicy::RoomIdIsToken;
        assert_eq!(
            p.admit("room1", "a", NOW),
            Ok(RoomGrant {
                room: "room1".into(),
                proves_id: false,
                holder: None
            })
        );
        assert_eq!(p.admit("bad room", "a", NOW), Err(TicketError::BadRoomId));
        assert_eq!(
            p.admit(&"r".repeat(65), "a", NOW),
            Err(TicketError::BadRoomId)
        );
    }

    #[test]
    fn a_valid_ticket_admits_to_its_room() {
        let grant = hs_policy()
            .admit(&mint(&claims("r1")), "alice", NOW)
            .expect("valid");
        assert_eq!(grant.room, "r1");
        assert!(!grant.proves_id);
    }

    #[test]
    fn sub_equal_to_the_id_proves_it_and_another_sub_is_refused() {
        let mut c = claims("r1");
        c.sub = Some("alice".into());
        let token = mint(&c);
        assert!(
            hs_policy()
                .admit(&token, "alice", NOW)
                .expect("ok")
                .proves_id
        );
        assert_eq!(
            hs_policy().admit(&token, "bob", NOW),
            Err(TicketError::SubjectMismatch)
        );
    }

    #[test]
    fn in_the_open_namespace_a_room_ticket_proves_no_id_and_the_audience_is_checked() {
        let room_ticket = mint(&TicketClaims {
            sub: Some("alice".into()),
            ..claims("r")
        });
        assert_eq!(
            hs_policy().prove_id(&room_ticket, "alice", NOW),
            Err(TicketError::RoomTicket),
            "a ticket for one room must not own the id everywhere"
        );
        let with_audience = TicketPolicy::Signed {
            key: TicketKey::Hs256(Box::new(HS256Key::from_bytes(SECRET))),
            issuer: None,
            audience: Some("this-server".into()),
            leeway_secs: 5,
            limits: TicketLimits::default(),
        };
        let id_ticket = |aud: Option<&str>| {
            mint(&TicketClaims {
                sub: Some("alice".into()),
                aud: aud.map(str::to_owned),
                exp_secs: Some(NOW + 60),
                iat_secs: Some(NOW),
                ..TicketClaims::default()
            })
        };
        for aud in [None, Some("another-service")] {
            assert_eq!(
                with_audience.prove_id(&id_ticket(aud), "alice", NOW),
                Err(TicketError::WrongAudience),
                "{aud:?}"
            );
        }
        assert_eq!(
            with_audience.prove_id(&id_ticket(Some("this-server")), "alice", NOW),
            Ok(true)
        );
    }

    #[test]
    fn the_open_namespace_takes_a_ticket_without_a_room_whose_sub_is_the_id() {
        let ticket = |sub: Option<&str>, exp: u64| {
            mint(&TicketClaims {
                sub: sub.map(str::to_owned),
                exp_secs: Some(exp),
                iat_secs: Some(NOW),
                ..TicketClaims::default()
            })
        };
        let policy = hs_policy();
        assert_eq!(
            policy.prove_id(&ticket(Some("alice"), NOW + 60), "alice", NOW),
            Ok(true)
        );
        assert_eq!(
            policy.prove_id(&ticket(Some("alice"), NOW + 60), "bob", NOW),
            Err(TicketError::SubjectMismatch)
        );
        assert_eq!(
            policy.prove_id(&ticket(None, NOW + 60), "alice", NOW),
            Err(TicketError::MissingSubject)
        );
        assert_eq!(
            policy.prove_id(&ticket(Some("alice"), NOW - 60), "alice", NOW),
            Err(TicketError::Expired)
        );
        assert_eq!(
            policy.prove_id("a-random-client-token", "alice", NOW),
            Err(TicketError::Malformed)
        );
        // Without a key the token is the client's own secret: it proves nothing.
        assert_eq!(
            TicketPolicy::RoomIdIsToken.prove_id("k3j5h2", "alice", NOW),
            Ok(false)
        );
        // A ticket without a room still cannot open a room.
        assert_eq!(
            policy.admit(&ticket(Some("alice"), NOW + 60), "alice", NOW),
            Err(TicketError::MissingRoom)
        );
    }

    #[test]
    fn time_claims_use_a_tolerance_of_seconds() {
        let mut c = claims("r1");
        c.exp_secs = Some(NOW - 10);
        assert_eq!(
            hs_policy().admit(&mint(&c), "a", NOW),
            Err(TicketError::Expired)
        );
        c.exp_secs = Some(NOW - 3); // inside the 5 s leeway
        assert!(hs_policy().admit(&mint(&c), "a", NOW).is_ok());

        let mut early = claims("r1");
        early.nbf_secs = Some(NOW + 60);
        assert_eq!(
            hs_policy().admit(&mint(&early), "a", NOW),
            Err(TicketError::NotYetValid)
        );
        // jwt-simple's default tolerance would accept 10 minutes of skew; we do not.
        let mut future = claims("r1");
        future.nbf_secs = Some(NOW + 600);
        assert_eq!(
            hs_policy().admit(&mint(&future), "a", NOW),
            Err(TicketError::NotYetValid)
        );
    }

    #[test]
    fn required_claims_must_be_present() {
        let mut no_exp = claims("r1");
        no_exp.exp_secs = None;
        assert_eq!(
            hs_policy().admit(&mint(&no_exp), "a", NOW),
            Err(TicketError::MissingExpiry)
        );
        let mut no_room = claims("r1");
        no_room.room = None;
        assert_eq!(
            hs_policy().admit(&mint(&no_room), "a", NOW),
            Err(TicketError::MissingRoom)
        );
        assert_eq!(
            hs_policy().admit(&mint(&claims("a b")), "a", NOW),
            Err(TicketError::BadRoomClaim)
        );
    }

    #[test]
    fn a_ticket_must_say_when_it_was_issued_and_live_hours_not_years() {
        let mut century = claims("r1");
        century.exp_secs = Some(NOW + 100 * 365 * 86_400);
        assert_eq!(
            hs_policy().admit(&mint(&century), "a", NOW),
            Err(TicketError::LivesTooLong(DEFAULT_TICKET_MAX_LIFETIME_SECS))
        );
        let mut session = claims("r1");
        session.exp_secs = Some(NOW + DEFAULT_TICKET_MAX_LIFETIME_SECS);
        assert!(hs_policy().admit(&mint(&session), "a", NOW).is_ok());
        let mut no_iat = claims("r1");
        no_iat.iat_secs = None;
        assert_eq!(
            hs_policy().admit(&mint(&no_iat), "a", NOW),
            Err(TicketError::MissingIssuedAt)
        );
        assert_eq!(
            hs_policy().prove_id(&mint(&no_iat), "a", NOW),
            Err(TicketError::MissingIssuedAt),
            "the open namespace's tickets too"
        );
    }

    #[test]
    fn a_server_may_require_sub_in_every_room_ticket() {
        let policy = TicketPolicy::Signed {
            key: TicketKey::Hs256(Box::new(HS256Key::from_bytes(SECRET))),
            issuer: None,
            audience: None,
            leeway_secs: 5,
            limits: TicketLimits {
                require_sub: true,
                ..TicketLimits::default()
            },
        };
        assert_eq!(
            policy.admit(&mint(&claims("r1")), "a", NOW),
            Err(TicketError::SubjectRequired)
        );
        let mut with_sub = claims("r1");
        with_sub.sub = Some("a".into());
        assert!(policy
            .admit(&mint(&with_sub), "a", NOW)
            .is_ok_and(|g| g.proves_id));
        assert!(
            policy.room_of(&mint(&claims("r1")), NOW).is_ok(),
            "reading the roster claims no identity"
        );
    }

    #[test]
    fn a_wrong_secret_is_a_bad_signature() {
        let token = mint_hs256(b"another-secret-another-secret-xx", &claims("r1")).expect("mint");
        assert_eq!(
            hs_policy().admit(&token, "a", NOW),
            Err(TicketError::BadSignature)
        );
        // A tampered payload: swap the room claim.
        let good = mint(&claims("r1"));
        let other = mint(&claims("r2"));
        let mut parts: Vec<&str> = good.split('.').collect();
        let other_payload = other.split('.').nth(1).expect("payload");
        parts[1] = other_payload;
        assert_eq!(
            hs_policy().admit(&parts.join("."), "a", NOW),
            Err(TicketError::BadSignature)
        );
    }

    #[test]
    fn alg_none_and_key_confusion_are_refused() {
        use base64_like::b64;
        let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = b64(format!(r#"{{"room":"r1","exp":{}}}"#, NOW + 60).as_bytes());
        let none = format!("{header}.{payload}.");
        assert!(hs_policy().admit(&none, "a", NOW).is_err());

        // An EdDSA-signed ticket presented to an HS256 verifier.
        let pair = Ed25519KeyPair::generate();
        let ed_token = mint_eddsa(&pair.to_pem(), &claims("r1")).expect("mint");
        assert_eq!(
            hs_policy().admit(&ed_token, "a", NOW),
            Err(TicketError::WrongAlgorithm)
        );

        // And the HS256 ticket presented to an EdDSA verifier.
        let ed_policy = TicketPolicy::Signed {
            key: TicketKey::EdDsa(Box::new(pair.public_key())),
            issuer: None,
            audience: None,
            leeway_secs: 5,
            limits: TicketLimits::default(),
        };
        assert!(ed_policy.admit(&ed_token, "a", NOW).is_ok());
        assert_eq!(
            ed_policy.admit(&mint(&claims("r1")), "a", NOW),
            Err(TicketError::WrongAlgorithm)
        );
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let policy = TicketPolicy::Signed {
            key: TicketKey::Hs256(Box::new(HS256Key::from_bytes(SECRET))),
            issuer: Some("game-backend".into()),
            audience: Some("peerjs".into()),
            leeway_secs: 5,
            limits: TicketLimits::default(),
        };
        let mut c = claims("r1");
        c.iss = Some("game-backend".into());
        c.aud = Some("peerjs".into());
        assert!(policy.admit(&mint(&c), "a", NOW).is_ok());
        let mut wrong_iss = c.clone();
        wrong_iss.iss = Some("someone-else".into());
        assert_eq!(
            policy.admit(&mint(&wrong_iss), "a", NOW),
            Err(TicketError::WrongIssuer)
        );
        let mut wrong_aud = c.clone();
        wrong_aud.aud = Some("other".into());
        assert_eq!(
            policy.admit(&mint(&wrong_aud), "a", NOW),
            Err(TicketError::WrongAudience)
        );
        let mut no_iss = c;
        no_iss.iss = None;
        assert_eq!(
            policy.admit(&mint(&no_iss), "a", NOW),
            Err(TicketError::WrongIssuer)
        );
    }

    #[test]
    fn oversized_and_garbage_tokens_are_refused() {
        assert_eq!(
            hs_policy().admit(&"a".repeat(5000), "a", NOW),
            Err(TicketError::TooLong)
        );
        assert_eq!(
            hs_policy().admit("room1", "a", NOW),
            Err(TicketError::Malformed)
        );
        assert_eq!(
            hs_policy().admit("a.b.c", "a", NOW),
            Err(TicketError::Malformed)
        );
    }

    /// Minimal base64url (no padding) for hand-made test tokens.
    mod base64_like {
        pub fn b64(input: &[u8]) -> String {
            const A: &[u8; 64] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut out = String::new();
            for chunk in input.chunks(3) {
                let b = [
                    chunk[0],
                    *chunk.get(1).unwrap_or(&0),
                    *chunk.get(2).unwrap_or(&0),
                ];
                let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
                for i in 0..=chunk.len() {
                    out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
                }
            }
            out
        }
    }
}
