//! `mint-ticket`: signs a room ticket (HS256) the way the game's backend
//! should, for tests and for checking a backend's own tickets against ours.
//!
//! ```text
//! ROOM_TICKET_SECRET=... cargo run -q -p tools --bin mint-ticket -- --room r1 [--sub alice] [--ttl 300] [--iss X] [--aud Y] [--jti Z]
//! ROOM_TICKET_SECRET=... cargo run -q -p tools --bin mint-ticket -- --sub alice   # open namespace
//! ```
//! Prints the token on stdout. The secret comes from the environment only,
//! never from the command line (where it would land in shell history).

use signaling_core::ticket::{mint_hs256, TicketClaims};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

const USAGE: &str = "usage: ROOM_TICKET_SECRET=... mint-ticket (--room ROOM [--sub PEER_ID] | --sub PEER_ID) [--ttl SECONDS] [--iss ISSUER] [--aud AUDIENCE] [--jti SESSION_ID]";

fn main() -> ExitCode {
    match run() {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("mint-ticket: {msg}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<String, String> {
    let secret = std::env::var("ROOM_TICKET_SECRET")
        .map_err(|_| "ROOM_TICKET_SECRET is not set".to_owned())?;
    if secret.len() < 32 {
        return Err("ROOM_TICKET_SECRET must be at least 32 bytes".into());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let mut claims = TicketClaims {
        iat_secs: Some(now),
        exp_secs: Some(now + 300),
        ..TicketClaims::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--room" => claims.room = Some(value),
            "--sub" => claims.sub = Some(value),
            "--iss" => claims.iss = Some(value),
            "--aud" => claims.aud = Some(value),
            "--jti" => claims.jti = Some(value),
            "--ttl" => {
                let ttl: u64 = value
                    .parse()
                    .map_err(|_| format!("--ttl {value:?} is not a number of seconds"))?;
                claims.exp_secs = Some(now + ttl);
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    // Rooms mode needs the room; the open namespace needs only the id (sub).
    match (claims.room.as_deref(), claims.sub.as_deref()) {
        (None, None) => return Err("--room (rooms mode) or --sub (open mode) is required".into()),
        (Some(room), _) if !signaling_core::ids::is_valid_room_id(room) => {
            return Err(format!(
                "{room:?} is not a valid room id ([A-Za-z0-9_-]{{1,64}})"
            ))
        }
        (_, Some(sub)) if !signaling_core::ids::is_valid_peer_id(sub) => {
            return Err(format!("{sub:?} is not a valid peer id"))
        }
        _ => {}
    }
    mint_hs256(secret.as_bytes(), &claims).map_err(|e| e.to_string())
}
