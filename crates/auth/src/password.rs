//! Password hashing with Argon2id, stored as PHC strings
//! (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
//!
//! Verification reads the parameters from the stored string, so hashes made
//! with different costs keep verifying after the default changes.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The cost parameters are out of Argon2's range.
    #[error("invalid Argon2 parameters")]
    InvalidParams,
    /// Argon2 refused the input or the random salt could not be drawn.
    #[error("password hashing failed")]
    Hashing,
}

/// Argon2id cost parameters.
///
/// [`PasswordCost::default`] is the argon2 crate's default (19 MiB, 2
/// passes, 1 lane; OWASP's minimum recommendation). In an unoptimised
/// (debug) build that takes a noticeable fraction of a second per hash, so
/// tests that create many users may use [`PasswordCost::minimal`] or build
/// the `argon2` package with `opt-level = 3` in the dev profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCost {
    memory_kib: u32,
    iterations: u32,
    lanes: u32,
}

impl Default for PasswordCost {
    fn default() -> Self {
        Self {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            lanes: Params::DEFAULT_P_COST,
        }
    }
}

impl PasswordCost {
    /// The cheapest parameters Argon2 allows. **For tests only.**
    pub fn minimal() -> Self {
        Self {
            memory_kib: Params::MIN_M_COST,
            iterations: Params::MIN_T_COST,
            lanes: Params::MIN_P_COST,
        }
    }

    fn hasher(self) -> Result<Argon2<'static>, PasswordError> {
        let params = Params::new(self.memory_kib, self.iterations, self.lanes, None)
            .map_err(|_| PasswordError::InvalidParams)?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// Hashes a password with Argon2id at the default cost and a random 16-byte salt.
///
/// # Errors
/// [`PasswordError::Hashing`] if Argon2 fails (e.g. the OS RNG is unavailable).
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    hash_password_with_cost(password, PasswordCost::default())
}

/// Hashes a password with Argon2id at the given cost.
///
/// # Errors
/// As [`hash_password`], or [`PasswordError::InvalidParams`].
pub fn hash_password_with_cost(
    password: &str,
    cost: PasswordCost,
) -> Result<String, PasswordError> {
    let hash = cost
        .hasher()?
        .hash_password(password.as_bytes())
        .map_err(|_| PasswordError::Hashing)?;
    Ok(hash.to_string())
}

/// Whether `password` matches the stored PHC string. A malformed PHC
/// string or one for another algorithm does not match.
pub fn verify_password(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_cost_hash_is_argon2id_phc_and_verifies() {
        let phc = hash_password_with_cost("correct horse", PasswordCost::minimal()).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{phc}");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("correct horsf", &phc));
        assert!(!verify_password("", &phc));
    }

    #[test]
    fn default_cost_hash_records_default_params_and_verifies() {
        let phc = hash_password("s3cret").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("s3cret", &phc));
        assert!(!verify_password("s3creT", &phc));
    }

    #[test]
    fn same_password_gets_a_different_salt_each_time() {
        let a = hash_password_with_cost("pw", PasswordCost::minimal()).unwrap();
        let b = hash_password_with_cost("pw", PasswordCost::minimal()).unwrap();
        assert_ne!(a, b);
        assert!(verify_password("pw", &a) && verify_password("pw", &b));
    }

    #[test]
    fn malformed_or_foreign_phc_strings_never_verify() {
        for phc in [
            "",
            "plain",
            "$argon2id$v=19$m=8,t=1,p=1$",
            "$2b$12$abcdefghijklmnopqrstuuJ0H8w6x7X8uV8T1dZ3q1Cw8O8p5p5Ee",
            "$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA",
        ] {
            assert!(!verify_password("pw", phc), "{phc:?}");
        }
    }
}
