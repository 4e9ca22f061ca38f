//! The users a ksqlDB server authenticates, read as Jetty reads them: the JAAS file's section
//! for the realm names a property file with `PropertyFileLoginModule`'s `file="…"`, whose lines
//! are `user: credential[,role…]`. A credential is plain text, `MD5:<hex>`, `CRYPT:<unix crypt>`
//! or Sluice's own `ARGON2:<PHC string>`.

use std::{collections::BTreeMap, path::Path};

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier, password_hash::SaltString};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use crate::error::{Result, SluiceError};

/// How a password is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Plain(String),
    /// The MD5 digest of the password's bytes.
    Md5([u8; 16]),
    /// A traditional Unix DES crypt string; its first two characters are the salt.
    Crypt(String),
    /// An Argon2 hash in PHC string form.
    Argon2(String),
}

impl Credential {
    /// Reads a credential as Jetty's `Credential.getCredential` does, plus `ARGON2:`.
    pub fn parse(text: &str) -> Result<Credential> {
        if let Some(hex) = text.strip_prefix("MD5:") {
            let digest = decode_hex(hex.trim()).ok_or_else(|| invalid(&format!("MD5:{hex} is not 32 hexadecimal digits")))?;
            return Ok(Credential::Md5(digest));
        }
        if let Some(crypt) = text.strip_prefix("CRYPT:") {
            if crypt.len() != 13 {
                return Err(invalid("a CRYPT: credential is the 13 characters of a Unix DES crypt"));
            }
            return Ok(Credential::Crypt(crypt.to_string()));
        }
        if let Some(phc) = text.strip_prefix("ARGON2:") {
            PasswordHash::new(phc).map_err(|e| invalid(&format!("ARGON2: credential: {e}")))?;
            return Ok(Credential::Argon2(phc.to_string()));
        }
        if text.starts_with("OBF:") {
            return Err(invalid("OBF: credentials are obfuscated, not protected, and Sluice does not read them: use MD5:, CRYPT: or ARGON2:"));
        }
        Ok(Credential::Plain(text.to_string()))
    }

    /// Whether `password` is the one this credential holds; comparisons take the same time
    /// whatever the password.
    pub fn verify(&self, password: &str) -> bool {
        match self {
            Credential::Plain(expected) => expected.as_bytes().ct_eq(password.as_bytes()).into(),
            Credential::Md5(digest) => Md5::digest(latin1(password)).as_slice().ct_eq(digest).into(),
            Credential::Crypt(crypt) => pwhash::unix_crypt::verify(latin1(password), crypt),
            Credential::Argon2(phc) => {
                PasswordHash::new(phc).is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
            }
        }
    }
}

/// A new `ARGON2:` credential for `password`, salted with 16 bytes from the system's random
/// source.
pub fn argon2_credential(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut salt)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| SluiceError::Internal(e.to_string()))?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| SluiceError::Internal(e.to_string()))?;
    Ok(format!("ARGON2:{hash}"))
}

/// One user's credential and roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub credential: Credential,
    pub roles: Vec<String>,
}

/// The users of the property file `realm`'s section of the JAAS file at `jaas` names.
pub fn load(jaas: &Path, realm: &str) -> Result<BTreeMap<String, User>> {
    let text = std::fs::read_to_string(jaas).map_err(|e| invalid(&format!("cannot read the JAAS file {}: {e}", jaas.display())))?;
    let file = Path::new(&password_file_of(&text, realm)?).to_path_buf();
    let users = std::fs::read_to_string(&file).map_err(|e| invalid(&format!("cannot read the password file {}: {e}", file.display())))?;
    parse_users(&users)
}

/// The `file="…"` of section `realm` of a JAAS configuration.
fn password_file_of(jaas: &str, realm: &str) -> Result<String> {
    let mut rest = jaas;
    while let Some(open) = rest.find('{') {
        let name = rest[..open].trim().rsplit([';', '}']).next().unwrap_or_default().trim();
        let close = rest[open..].find('}').map(|c| open + c).ok_or_else(|| invalid("the JAAS file has a '{' with no '}'"))?;
        let body = &rest[open + 1..close];
        if name == realm {
            if !body.contains("PropertyFileLoginModule") {
                return Err(invalid(&format!("JAAS section {realm} uses no PropertyFileLoginModule, the only login module Sluice reads")));
            }
            let file = body
                .split_once("file")
                .and_then(|(_, after)| after.trim_start().strip_prefix('='))
                .and_then(|after| after.trim_start().strip_prefix('"'))
                .and_then(|after| after.split_once('"'))
                .map(|(file, _)| file.to_string());
            return file.ok_or_else(|| invalid(&format!("JAAS section {realm} names no file=\"…\"")));
        }
        rest = &rest[close + 1..];
    }
    Err(invalid(&format!("the JAAS file has no section named {realm} (authentication.realm)")))
}

/// `user: credential[,role…]` lines; `#` starts a comment.
fn parse_users(text: &str) -> Result<BTreeMap<String, User>> {
    let mut users = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, rest) = line
            .split_once([':', '='])
            .ok_or_else(|| invalid(&format!("password file line {}: expected user: credential[,role…]", n + 1)))?;
        let rest = rest.trim();
        // An ARGON2: PHC string holds commas among its parameters; its roles follow its last `$`.
        let roles_from = rest.rfind('$').filter(|_| rest.starts_with("ARGON2:")).unwrap_or(0);
        let (credential, roles) = match rest[roles_from..].find(',') {
            Some(comma) => rest.split_at(roles_from + comma),
            None => (rest, ""),
        };
        let credential = Credential::parse(credential.trim()).map_err(|e| invalid(&format!("password file line {}: {e}", n + 1)))?;
        let roles = roles.split(',').map(str::trim).filter(|r| !r.is_empty()).map(str::to_string).collect();
        users.insert(name.trim().to_string(), User { credential, roles });
    }
    Ok(users)
}

fn decode_hex(hex: &str) -> Option<[u8; 16]> {
    let mut digest = [0u8; 16];
    if hex.len() != 32 {
        return None;
    }
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(digest)
}

/// The password's bytes as Jetty digests them: ISO-8859-1, a character beyond it as `?`.
fn latin1(password: &str) -> Vec<u8> {
    password.chars().map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')).collect()
}

fn invalid(message: &str) -> SluiceError {
    SluiceError::Config(message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_md5_crypt_and_argon2_credentials_verify_their_password_only() {
        let md5 = Credential::parse("MD5:83b1a588059ff7e208fd752e32c01555").unwrap();
        assert!(md5.verify("kingfisher") && !md5.verify("Kingfisher"));
        // Perl's crypt("changeme", "ha"), as Jetty's UnixCrypt writes it.
        let crypt = Credential::parse("CRYPT:haEYZ8ZT/T9qE").unwrap();
        assert!(crypt.verify("changeme") && !crypt.verify("changemE"));
        let plain = Credential::parse("changeme").unwrap();
        assert!(plain.verify("changeme") && !plain.verify("changeme "));
        let argon2 = Credential::parse(&argon2_credential("s3cret").unwrap()).unwrap();
        assert!(argon2.verify("s3cret") && !argon2.verify("s3cre"));
        assert!(Credential::parse("OBF:1v2j1uum1xtv1zej1zer1xtn1uvk1v1v").unwrap_err().to_string().contains("OBF:"));
        assert!(Credential::parse("MD5:12").is_err());
    }

    #[test]
    fn the_realms_section_names_the_password_file_whose_lines_give_credentials_and_roles() {
        let jaas = "Other {\n  x.Module required file=\"other\";\n};\nKsqlServer-Props {\n  org.eclipse.jetty.jaas.spi.PropertyFileLoginModule required\n  file=\"/etc/ksql/password-file\"\n  debug=\"false\";\n};\n";
        assert_eq!(password_file_of(jaas, "KsqlServer-Props").unwrap(), "/etc/ksql/password-file");
        assert!(password_file_of(jaas, "Missing").unwrap_err().to_string().contains("no section named Missing"));
        let users = parse_users("# users\nfred: letmein,user\nharry: MD5:83b1a588059ff7e208fd752e32c01555, user, developer\nnobody: x\n").unwrap();
        assert_eq!(users["fred"], User { credential: Credential::Plain("letmein".into()), roles: vec!["user".into()] });
        assert_eq!(users["harry"].roles, ["user", "developer"]);
        assert!(users["nobody"].roles.is_empty());
        let argon2 = argon2_credential("pass").unwrap();
        let users = parse_users(&format!("alice: {argon2},developer,admin\nbob: {argon2}\n")).unwrap();
        assert!(users["alice"].credential.verify("pass"));
        assert_eq!(users["alice"].roles, ["developer", "admin"]);
        assert!(users["bob"].credential.verify("pass") && users["bob"].roles.is_empty());
        assert!(parse_users("just a line\n").is_err());
    }
}
