//! Who is calling: bearer credentials, each speaking for one organisation (an LA or an NHS care
//! setting), and the administrator, whose secret is a Spin variable.
//!
//! A credential is `cpis_{id}_{secret}`. The store keeps, under the id, only the SHA-256 of the
//! secret and the organisation; the secret is shown once, when issued. Comparisons of secrets
//! are constant-time, on digests, so neither content nor length leaks through timing.

use crate::access::NhsUser;
use crate::error::ApiError;
use crate::identifiers::{DisplayName, OdsCode};
use crate::keys;
use crate::log::Entry;
use crate::store::{KeyValue, StoreError, encode, get_json};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

const TOKEN_PREFIX: &str = "cpis_";
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    LocalAuthority,
    CareSetting,
}

/// An organisation that holds credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organisation {
    pub ods_code: OdsCode,
    pub name: DisplayName,
    pub kind: OrgKind,
}

/// The public half of a credential: 16 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CredentialId(String);

impl CredentialId {
    pub fn parse(input: &str) -> Option<Self> {
        let ok = input.len() == ID_BYTES * 2
            && input
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| Self(input.to_string()))
    }
}

impl fmt::Display for CredentialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the store keeps for a credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCredential {
    pub organisation: Organisation,
    pub secret_sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
}

/// A newly issued credential: the token is returned to the administrator once and never stored.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedCredential {
    pub credential_id: CredentialId,
    pub token: String,
    pub organisation: Organisation,
}

/// The clinical system a care setting's credential belongs to and the person who answers for
/// it: the national HL7 V3 service's second kind of author, a device with a nominated
/// responsible person. An access that names no user is recorded against them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NominatedSystem {
    /// The system's name, shown with every access made through it, e.g. "Symphony ED (RR8)".
    pub system: DisplayName,
    /// Who answers for the accesses the system makes without naming a user.
    pub responsible_person: NhsUser,
}

/// What the store keeps under `cred-system/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredSystem {
    #[serde(flatten)]
    nominated: NominatedSystem,
    #[serde(with = "time::serde::rfc3339")]
    registered_at: OffsetDateTime,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Administrator,
    /// An organisation, through one of its credentials.
    Organisation(Organisation, CredentialId),
}

impl Caller {
    /// The LA making the request, or 403 for anyone else.
    pub fn require_local_authority(&self) -> Result<&Organisation, ApiError> {
        match self {
            Caller::Organisation(org, _) if org.kind == OrgKind::LocalAuthority => Ok(org),
            _ => Err(ApiError::forbidden(
                "only a local authority's credential may do this",
            )),
        }
    }

    /// The NHS care setting making the request and the credential it used, or 403 for anyone
    /// else.
    pub fn require_care_setting(&self) -> Result<(&Organisation, &CredentialId), ApiError> {
        match self {
            Caller::Organisation(org, id) if org.kind == OrgKind::CareSetting => Ok((org, id)),
            _ => Err(ApiError::forbidden(
                "only an NHS care setting's credential may do this",
            )),
        }
    }

    pub fn require_administrator(&self) -> Result<(), ApiError> {
        match self {
            Caller::Administrator => Ok(()),
            _ => Err(ApiError::forbidden("only the administrator may do this")),
        }
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn random_hex(len: usize) -> Result<String, StoreError> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Unavailable(format!("no randomness: {e}")))?;
    Ok(hex::encode(bytes))
}

/// Issues a new credential for `organisation`, registering the organisation on first use. An
/// ODS code keeps the name and kind it was registered with: a mismatch is refused (409) so that
/// a typo cannot turn an LA into a care setting. Calls: `get` of the registration, `increment`
/// of the organisation's credential list (and of the list of LAs when registering an LA), one
/// `set-many` (credential, list entry, and the registration and its listing when new): the
/// credential is listed whenever it exists, so revoking the organisation never misses one.
pub fn issue_credential(
    store: &impl KeyValue,
    organisation: Organisation,
    now: OffsetDateTime,
) -> Result<IssuedCredential, ApiError> {
    let registration = keys::organisation(&organisation.ods_code);
    let registered: Option<Organisation> = get_json(store, &registration)?;
    if let Some(registered) = &registered
        && *registered != organisation
    {
        return Err(ApiError::new(
            http::StatusCode::CONFLICT,
            "organisation_mismatch",
            format!(
                "{} is registered as {:?} named {:?}; revoke the organisation before registering it differently",
                organisation.ods_code,
                registered.kind,
                registered.name.as_str()
            ),
        )
        .with_field("ods_code"));
    }
    let id = CredentialId(random_hex(ID_BYTES)?);
    let secret = random_hex(SECRET_BYTES)?;
    let stored = StoredCredential {
        organisation: organisation.clone(),
        secret_sha256: hex::encode(sha256(secret.as_bytes())),
        issued_at: now,
    };
    let list = keys::organisation_credentials(&organisation.ods_code);
    let seq = list.reserve(store, 1)?;
    let mut writes = vec![
        (keys::credential(&id), encode(&stored)),
        list.entry(seq, now, &id),
    ];
    if registered.is_none() {
        writes.push((registration, encode(&organisation)));
        if organisation.kind == OrgKind::LocalAuthority {
            // Listed whenever registered, for the administrator's match rate of every LA.
            let las = keys::local_authorities();
            let seq = las.reserve(store, 1)?;
            writes.push(las.entry(seq, now, &organisation.ods_code));
        }
    }
    store.set_many(&writes)?;
    Ok(IssuedCredential {
        token: format!("{TOKEN_PREFIX}{id}_{secret}"),
        credential_id: id,
        organisation,
    })
}

/// Revokes one credential, at once, for every component, with the system registered with it.
/// Calls: `get`, `delete-many`.
pub fn revoke_credential(store: &impl KeyValue, id: &CredentialId) -> Result<(), ApiError> {
    let key = keys::credential(id);
    if store.get(&key)?.is_none() {
        return Err(ApiError::not_found(format!("no credential {id}")).with_field("credential_id"));
    }
    store.delete_many(&[key, keys::credential_system(id)])?;
    Ok(())
}

/// Registers (or replaces) the system a care setting's credential belongs to and its nominated
/// responsible person. Calls: `get` of the credential, one `set-many`.
///
/// The registration has a key of its own, `cred-system/{id}`, rather than a member of the
/// credential's value: a registration racing a revocation can then leave only an orphan that
/// nothing reads, never bring a revoked credential back.
pub fn register_system(
    store: &impl KeyValue,
    id: &CredentialId,
    nominated: NominatedSystem,
    now: OffsetDateTime,
) -> Result<(), ApiError> {
    let credential: StoredCredential =
        get_json(store, &keys::credential(id))?.ok_or_else(|| no_credential(id))?;
    if credential.organisation.kind != OrgKind::CareSetting {
        return Err(ApiError::new(
            http::StatusCode::CONFLICT,
            "not_a_care_setting",
            format!(
                "credential {id} is {}'s, a local authority: only an NHS care setting's \
                 credential can have a system and a responsible person",
                credential.organisation.ods_code
            ),
        )
        .with_field("credential_id"));
    }
    let stored = StoredSystem {
        nominated,
        registered_at: now,
    };
    store.set_many(&[(keys::credential_system(id), encode(&stored))])?;
    Ok(())
}

/// The system registered with a credential, if any. Calls: one `get`.
pub fn nominated_system(
    store: &impl KeyValue,
    id: &CredentialId,
) -> Result<Option<NominatedSystem>, StoreError> {
    Ok(get_json::<StoredSystem>(store, &keys::credential_system(id))?.map(|s| s.nominated))
}

/// Removes the system registered with a credential: accesses naming no user are refused again.
/// Calls: `get`, `delete`.
pub fn unregister_system(store: &impl KeyValue, id: &CredentialId) -> Result<(), ApiError> {
    let key = keys::credential_system(id);
    if store.get(&key)?.is_none() {
        return Err(
            ApiError::not_found(format!("no system is registered with credential {id}"))
                .with_field("credential_id"),
        );
    }
    store.delete(&key)?;
    Ok(())
}

fn no_credential(id: &CredentialId) -> ApiError {
    ApiError::not_found(format!("no credential {id}")).with_field("credential_id")
}

/// Revokes every credential of an organisation and removes its registration, so the ODS code
/// can be registered afresh. Returns how many credentials were still valid. Calls: `get` of
/// the registration, the credential list (`get-many`, `increment` by 0), a `get-many` of the
/// credentials, one `delete-many`.
pub fn revoke_organisation(store: &impl KeyValue, ods: &OdsCode) -> Result<usize, ApiError> {
    let registration = keys::organisation(ods);
    if store.get(&registration)?.is_none() {
        return Err(ApiError::not_found(format!("no organisation {ods}")).with_field("ods_code"));
    }
    let list = keys::organisation_credentials(ods);
    let listed: Vec<Entry<CredentialId>> = list.read_all_if_any(store, 16)?;
    let credentials: Vec<String> = listed
        .iter()
        .map(|entry| keys::credential(&entry.item))
        .collect();
    let valid = store
        .get_many(&credentials)?
        .iter()
        .filter(|v| v.is_some())
        .count();
    let mut doomed = credentials;
    doomed.extend(
        listed
            .iter()
            .map(|entry| keys::credential_system(&entry.item)),
    );
    doomed.extend(listed.iter().map(|entry| list.entry_key(entry.seq)));
    doomed.push(list.head_key());
    doomed.push(registration);
    store.delete_many(&doomed)?;
    Ok(valid)
}

/// Works out the caller from the `Authorization` header value: one `get` for an organisation's
/// credential, none for the administrator's. `admin_secret` is `None` in components that
/// accept no administrator.
pub fn authenticate(
    store: &impl KeyValue,
    authorization: Option<&str>,
    admin_secret: Option<&str>,
) -> Result<Caller, ApiError> {
    let header = authorization.ok_or_else(|| {
        ApiError::unauthenticated("send the credential as 'Authorization: Bearer <token>'")
    })?;
    let token = header
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::unauthenticated("the Authorization header must be 'Bearer <token>'")
        })?;
    let refused =
        || ApiError::unauthenticated("the credential is not valid: unknown, revoked or mistyped");

    if let Some((id, secret)) = token
        .strip_prefix(TOKEN_PREFIX)
        .and_then(|rest| rest.split_once('_'))
    {
        let id = CredentialId::parse(id).ok_or_else(refused)?;
        let stored: StoredCredential =
            get_json(store, &keys::credential(&id))?.ok_or_else(refused)?;
        let expected = hex::decode(&stored.secret_sha256).map_err(|_| refused())?;
        if bool::from(sha256(secret.as_bytes()).ct_eq(expected.as_slice())) {
            return Ok(Caller::Organisation(stored.organisation, id));
        }
        return Err(refused());
    }
    match admin_secret {
        Some(admin)
            if !admin.is_empty()
                && bool::from(sha256(token.as_bytes()).ct_eq(&sha256(admin.as_bytes()))) =>
        {
            Ok(Caller::Administrator)
        }
        _ => Err(refused()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use time::macros::datetime;

    fn org(kind: OrgKind) -> Organisation {
        Organisation {
            ods_code: OdsCode::parse("RR8").unwrap(),
            name: DisplayName::parse("Leeds Teaching Hospitals ED").unwrap(),
            kind,
        }
    }

    const NOW: OffsetDateTime = datetime!(2026-11-25 10:00 UTC);

    #[test]
    fn issued_credential_authenticates_as_its_organisation() {
        let store = MemoryStore::new();
        let issued = issue_credential(&store, org(OrgKind::CareSetting), NOW).unwrap();
        let caller = authenticate(&store, Some(&format!("Bearer {}", issued.token)), None).unwrap();
        assert_eq!(
            caller,
            Caller::Organisation(org(OrgKind::CareSetting), issued.credential_id)
        );
    }

    #[test]
    fn only_the_hash_of_the_secret_is_stored() {
        let store = MemoryStore::new();
        let issued = issue_credential(&store, org(OrgKind::CareSetting), NOW).unwrap();
        let secret = issued.token.rsplit('_').next().unwrap();
        for value in store.snapshot().values() {
            assert!(!String::from_utf8_lossy(value).contains(secret));
        }
    }

    #[test]
    fn wrong_secret_unknown_id_and_revoked_credential_are_refused() {
        let store = MemoryStore::new();
        let issued = issue_credential(&store, org(OrgKind::LocalAuthority), NOW).unwrap();
        let mut wrong = issued.token.clone();
        wrong.pop();
        wrong.push('x');
        for token in [
            wrong.as_str(),
            "cpis_0000000000000000_abc",
            "cpis_nothex_abc",
            "garbage",
        ] {
            let err = authenticate(&store, Some(&format!("Bearer {token}")), None).unwrap_err();
            assert_eq!(err.status, 401, "{token}");
        }
        revoke_credential(&store, &issued.credential_id).unwrap();
        let err =
            authenticate(&store, Some(&format!("Bearer {}", issued.token)), None).unwrap_err();
        assert_eq!(err.status, 401);
        assert_eq!(
            revoke_credential(&store, &issued.credential_id)
                .unwrap_err()
                .status,
            404
        );
    }

    #[test]
    fn revoking_an_organisation_revokes_all_its_credentials() {
        let store = MemoryStore::new();
        let first = issue_credential(&store, org(OrgKind::CareSetting), NOW).unwrap();
        let second = issue_credential(&store, org(OrgKind::CareSetting), NOW).unwrap();
        assert_eq!(
            revoke_organisation(&store, &OdsCode::parse("RR8").unwrap()).unwrap(),
            2
        );
        for token in [first.token, second.token] {
            assert_eq!(
                authenticate(&store, Some(&format!("Bearer {token}")), None)
                    .unwrap_err()
                    .status,
                401
            );
        }
        assert_eq!(
            revoke_organisation(&store, &OdsCode::parse("RR8").unwrap())
                .unwrap_err()
                .status,
            404
        );
        // Registered again afresh afterwards, even as another kind.
        assert!(issue_credential(&store, org(OrgKind::LocalAuthority), NOW).is_ok());
    }

    #[test]
    fn credentials_issued_at_once_to_a_new_organisation_are_all_revoked_with_it() {
        let store = std::sync::Arc::new(MemoryStore::new());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    issue_credential(&*store, org(OrgKind::CareSetting), NOW)
                        .unwrap()
                        .token
                })
            })
            .collect();
        let tokens: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(
            revoke_organisation(&*store, &OdsCode::parse("RR8").unwrap()).unwrap(),
            8
        );
        for token in tokens {
            assert!(authenticate(&*store, Some(&format!("Bearer {token}")), None).is_err());
        }
        assert!(
            store.snapshot().is_empty(),
            "nothing of the organisation is left"
        );
    }

    #[test]
    fn an_ods_code_keeps_its_kind_and_name() {
        let store = MemoryStore::new();
        issue_credential(&store, org(OrgKind::CareSetting), NOW).unwrap();
        let err = issue_credential(&store, org(OrgKind::LocalAuthority), NOW).unwrap_err();
        assert_eq!(
            (err.status.as_u16(), err.code),
            (409, "organisation_mismatch")
        );
        let mut renamed = org(OrgKind::CareSetting);
        renamed.name = DisplayName::parse("Another name").unwrap();
        assert_eq!(
            issue_credential(&store, renamed, NOW).unwrap_err().status,
            409
        );
    }

    #[test]
    fn missing_or_malformed_header_is_401_naming_the_header() {
        let store = MemoryStore::new();
        for header in [None, Some("Basic abc"), Some("Bearer "), Some("bearer x")] {
            let err = authenticate(&store, header, None).unwrap_err();
            assert_eq!(err.status, 401);
            assert_eq!(err.field.as_deref(), Some("authorization"));
        }
    }

    #[test]
    fn administrator_is_recognised_only_where_a_secret_is_configured() {
        let store = MemoryStore::new();
        assert_eq!(
            authenticate(&store, Some("Bearer s3cret"), Some("s3cret")).unwrap(),
            Caller::Administrator
        );
        assert!(authenticate(&store, Some("Bearer s3cret"), None).is_err());
        assert!(authenticate(&store, Some("Bearer s3cre"), Some("s3cret")).is_err());
        assert!(authenticate(&store, Some("Bearer "), Some("")).is_err());
    }

    fn nominated(name: &str) -> NominatedSystem {
        NominatedSystem {
            system: DisplayName::parse("Symphony ED").unwrap(),
            responsible_person: NhsUser {
                id: DisplayName::parse("555021935107").unwrap(),
                name: DisplayName::parse(name).unwrap(),
                role: DisplayName::parse("ED Clinical Lead").unwrap(),
            },
        }
    }

    #[test]
    fn a_care_settings_credential_carries_a_system_until_it_is_removed() {
        let store = MemoryStore::new();
        let issued = issue_credential(&store, org(OrgKind::CareSetting), NOW).unwrap();
        let id = &issued.credential_id;
        assert_eq!(nominated_system(&store, id).unwrap(), None);
        register_system(&store, id, nominated("Dr Jo Bloggs"), NOW).unwrap();
        register_system(&store, id, nominated("Siân Ó'Brien-Llŷr"), NOW).unwrap();
        assert_eq!(
            nominated_system(&store, id).unwrap(),
            Some(nominated("Siân Ó'Brien-Llŷr")),
            "registering again replaces"
        );
        unregister_system(&store, id).unwrap();
        assert_eq!(nominated_system(&store, id).unwrap(), None);
        assert_eq!(unregister_system(&store, id).unwrap_err().status, 404);
    }

    #[test]
    fn only_an_existing_care_settings_credential_can_carry_a_system() {
        let store = MemoryStore::new();
        let la = issue_credential(&store, org(OrgKind::LocalAuthority), NOW).unwrap();
        let err = register_system(&store, &la.credential_id, nominated("A"), NOW).unwrap_err();
        assert_eq!((err.status.as_u16(), err.code), (409, "not_a_care_setting"));
        let unknown = CredentialId::parse("0123456789abcdef").unwrap();
        let err = register_system(&store, &unknown, nominated("A"), NOW).unwrap_err();
        assert_eq!(err.status, 404);
        assert_eq!(nominated_system(&store, &unknown).unwrap(), None);
    }

    #[test]
    fn revoking_removes_the_registered_system_too() {
        let store = MemoryStore::new();
        let one = issue_credential(&store, org(OrgKind::CareSetting), NOW).unwrap();
        let two = issue_credential(&store, org(OrgKind::CareSetting), NOW).unwrap();
        for issued in [&one, &two] {
            register_system(&store, &issued.credential_id, nominated("A"), NOW).unwrap();
        }
        revoke_credential(&store, &one.credential_id).unwrap();
        assert_eq!(nominated_system(&store, &one.credential_id).unwrap(), None);
        revoke_organisation(&store, &OdsCode::parse("RR8").unwrap()).unwrap();
        assert!(
            store.snapshot().is_empty(),
            "nothing of the organisation is left"
        );
    }

    #[test]
    fn roles_are_enforced() {
        let id = CredentialId::parse("0123456789abcdef").unwrap();
        let la = Caller::Organisation(org(OrgKind::LocalAuthority), id.clone());
        let setting = Caller::Organisation(org(OrgKind::CareSetting), id);
        assert!(la.require_local_authority().is_ok());
        assert_eq!(la.require_care_setting().unwrap_err().status, 403);
        assert_eq!(setting.require_local_authority().unwrap_err().status, 403);
        assert_eq!(setting.require_administrator().unwrap_err().status, 403);
        assert!(Caller::Administrator.require_administrator().is_ok());
        assert_eq!(
            Caller::Administrator
                .require_local_authority()
                .unwrap_err()
                .status,
            403
        );
    }
}
