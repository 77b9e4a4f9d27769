//! Operators' passwords: argon2id hashes in PHC string form, made by `lienthong hash-password` and checked at
//! login.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2};

/// Checks that `phc` is an argon2 (`argon2id`, `argon2i` or `argon2d`) hash in PHC string form.
pub fn parse(phc: &str) -> Result<(), String> {
    let h = PasswordHash::new(phc)
        .map_err(|e| format!("not a PHC string ({e}); make one with `lienthong hash-password`"))?;
    match Algorithm::try_from(h.algorithm) {
        Ok(_) if h.hash.is_some() && h.salt.is_some() => Ok(()),
        Ok(_) => Err(
            "the PHC string has no salt or no hash; make one with `lienthong hash-password`".into(),
        ),
        Err(_) => Err(format!(
            "algorithm `{}` is not argon2 (argon2id, argon2i or argon2d)",
            h.algorithm
        )),
    }
}

/// An argon2id hash of `password` with a fresh random salt, in PHC string form.
pub fn hash(password: &str) -> Result<String, String> {
    // 16 random bytes from the operating system's generator (a v4 UUID's randomness is getrandom's).
    let salt =
        SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes()).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches `phc` (false for a hash that does not parse). Slow on purpose: call it off the
/// async threads.
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash("mật khẩu").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        parse(&h).unwrap();
        assert!(verify("mật khẩu", &h));
        assert!(!verify("mat khau", &h));
        assert!(!verify("mật khẩu", "not a hash"));
        assert_ne!(h, hash("mật khẩu").unwrap(), "a fresh salt each time");
    }

    #[test]
    fn other_strings_are_refused_with_a_reason() {
        assert!(parse("hunter2").unwrap_err().contains("PHC"));
        assert!(
            parse("$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E")
                .unwrap_err()
                .contains("not argon2")
        );
    }
}
