//! `lienthong hash-password`: the argon2id hash of a password, for `[[operators]] password_hash`.
//!
//! The password is read from standard input (its first line, without the line ending), never from the
//! command line, where other users could see it in the process list.

use std::io::BufRead;
use std::process::ExitCode;

pub fn hash_password() -> ExitCode {
    let mut line = String::new();
    if let Err(e) = std::io::stdin().lock().read_line(&mut line) {
        eprintln!("cannot read the password from standard input: {e}");
        return ExitCode::from(2);
    }
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        eprintln!(
            "no password on standard input (e.g. `printf '%s' \"$PW\" | lienthong hash-password`)"
        );
        return ExitCode::from(2);
    }
    match lienthong_bus::ui::password::hash(password) {
        Ok(h) => {
            println!("{h}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot hash the password: {e}");
            ExitCode::FAILURE
        }
    }
}
