//! Console commands: the words of a query, case-insensitive, first word first; anything after
//! what a command needs (a `;`, say) is ignored, as upstream does.

/// What a SHOW asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// `SHOW HELP`.
    Help,
    /// `SHOW STATS`.
    Stats,
    /// `SHOW POOLS`.
    Pools,
    /// `SHOW POOLS_EXTENDED`.
    PoolsExtended,
    /// `SHOW DATABASES`.
    Databases,
    /// `SHOW SERVERS`.
    Servers,
    /// `SHOW CLIENTS`.
    Clients,
    /// `SHOW LISTS`.
    Lists,
    /// `SHOW ERRORS`.
    Errors,
    /// `SHOW ERRORS_PER_ROUTE`.
    ErrorsPerRoute,
    /// `SHOW VERSION`.
    Version,
    /// `SHOW VERSION_EXTENDED`.
    VersionExtended,
    /// `SHOW LISTEN`.
    Listen,
    /// `SHOW STORAGES`.
    Storages,
    /// `SHOW FDS`.
    Fds,
    /// `SHOW SERVER_PREP_STMTS`.
    ServerPrepStmts,
    /// `SHOW GLOBAL_PREPARED_STATEMENTS`.
    GlobalPreparedStatements,
    /// `SHOW IS_PAUSED`.
    IsPaused,
    /// `SHOW HOST_UTILIZATION`.
    HostUtilization,
    /// `SHOW RULES`.
    Rules,
    /// `SHOW HOSTS` (ours): each storage host's state, role, lag and servers.
    Hosts,
}

/// A console command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `SHOW …`.
    Show(Show),
    /// `KILL_CLIENT c…`: the id as typed.
    KillClient(String),
    /// `RELOAD`.
    Reload,
    /// `SET …` (accepted, changes nothing, as upstream).
    Set,
    /// `PAUSE [db]`.
    Pause(Option<String>),
    /// `RESUME [db]`.
    Resume(Option<String>),
    /// `DROP SERVERS`.
    DropServers,
    /// `CREATE MODULE` / `DROP MODULE`: not in this build.
    Module,
}

impl Command {
    /// Whether the `stat` role may run it (it may only look).
    pub fn read_only(&self) -> bool {
        matches!(self, Command::Show(_))
    }
}

/// The query is no command we know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown;

/// Reads a console query.
pub fn parse(query: &str) -> Result<Command, Unknown> {
    let mut words = words(query);
    let first = words.next().ok_or(Unknown)?;
    let command = match first.as_str() {
        "show" => Command::Show(show(&words.next().ok_or(Unknown)?)?),
        "kill_client" => Command::KillClient(words.next().ok_or(Unknown)?),
        "reload" => Command::Reload,
        "set" => Command::Set,
        "pause" => Command::Pause(words.next()),
        "resume" => Command::Resume(words.next()),
        "drop" => match words.next().as_deref() {
            Some("servers") => Command::DropServers,
            Some("module") => Command::Module,
            _ => return Err(Unknown),
        },
        "create" => match words.next().as_deref() {
            Some("module") => Command::Module,
            _ => return Err(Unknown),
        },
        _ => return Err(Unknown),
    };
    Ok(command)
}

fn show(what: &str) -> Result<Show, Unknown> {
    Ok(match what {
        "help" => Show::Help,
        "stats" => Show::Stats,
        "pools" => Show::Pools,
        "pools_extended" => Show::PoolsExtended,
        "databases" => Show::Databases,
        "servers" => Show::Servers,
        "clients" => Show::Clients,
        "lists" => Show::Lists,
        "errors" => Show::Errors,
        "errors_per_route" => Show::ErrorsPerRoute,
        "version" => Show::Version,
        "version_extended" => Show::VersionExtended,
        "listen" => Show::Listen,
        "storages" => Show::Storages,
        "fds" => Show::Fds,
        "server_prep_stmts" => Show::ServerPrepStmts,
        "global_prepared_statements" => Show::GlobalPreparedStatements,
        "is_paused" => Show::IsPaused,
        "host_utilization" => Show::HostUtilization,
        "rules" => Show::Rules,
        "hosts" => Show::Hosts,
        _ => return Err(Unknown),
    })
}

/// The words of a query: runs of letters, digits and `_`, lowercased; quoted strings whole
/// (quotes off, case kept); everything else (`;`, `,`, `=`) separates.
fn words(query: &str) -> impl Iterator<Item = String> + '_ {
    let mut rest = query;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches(|c: char| !is_word(c) && c != '"' && c != '\'');
        let mut chars = rest.chars();
        let first = chars.next()?;
        if first == '"' || first == '\'' {
            let body = &rest[1..];
            let end = body.find(first).unwrap_or(body.len());
            let word = body[..end].to_string();
            rest = body.get(end + 1..).unwrap_or("");
            return Some(word);
        }
        let end = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
        let word = rest[..end].to_ascii_lowercase();
        rest = &rest[end..];
        Some(word)
    })
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_case_insensitive_and_ignore_trailing_words() {
        assert_eq!(parse("show pools;"), Ok(Command::Show(Show::Pools)));
        assert_eq!(parse("  SHOW Stats ; "), Ok(Command::Show(Show::Stats)));
        assert_eq!(
            parse("show pools_extended"),
            Ok(Command::Show(Show::PoolsExtended))
        );
        assert_eq!(parse("RELOAD;"), Ok(Command::Reload));
        assert_eq!(parse("set a = 1"), Ok(Command::Set));
        assert_eq!(parse("pause"), Ok(Command::Pause(None)));
        assert_eq!(parse("PAUSE db1;"), Ok(Command::Pause(Some("db1".into()))));
        assert_eq!(
            parse("resume \"Db\""),
            Ok(Command::Resume(Some("Db".into())))
        );
        assert_eq!(parse("drop servers"), Ok(Command::DropServers));
        assert_eq!(parse("create module '/x.so'"), Ok(Command::Module));
    }

    #[test]
    fn kill_client_takes_the_id_word() {
        assert_eq!(
            parse("kill_client c0123456789ab;"),
            Ok(Command::KillClient("c0123456789ab".into()))
        );
        assert_eq!(parse("kill_client"), Err(Unknown));
    }

    #[test]
    fn unknown_commands_are_errors() {
        for q in ["", ";", "show", "show nothing", "select 1", "drop table x"] {
            assert_eq!(parse(q), Err(Unknown), "{q}");
        }
        assert!(Command::Show(Show::Help).read_only());
        assert!(!Command::Reload.read_only());
    }
}
