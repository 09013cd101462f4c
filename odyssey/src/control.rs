//! What operators do to a running instance, from a signal or the console: reload the config,
//! log it, pause and resume, kill a client.

use std::sync::Arc;

use crate::instance::Instance;
use crate::router;
use crate::{od_error, od_info};

/// SIGHUP: a new config for new clients; a bad one is reported and the old one kept.
pub fn reload(inst: &Arc<Instance>) {
    crate::notify::reloading();
    load_again(inst);
    crate::notify::reloaded();
}

fn load_again(inst: &Arc<Instance>) {
    od_info!(
        inst.logger,
        "config",
        None,
        None,
        "reloading {}",
        inst.config_path().display()
    );
    match crate::config::load(inst.config_path()) {
        Ok((config, warnings)) => {
            for w in &warnings {
                od_info!(inst.logger, "config", None, None, "{w}");
            }
            let config = crate::option::apply(&inst.options, config);
            inst.logger.reconfigure(&config.global.log);
            let generation = inst.replace_config(config);
            od_info!(
                inst.logger,
                "config",
                None,
                None,
                "config reloaded (generation {generation})"
            );
            if inst.config().config.global.log.config {
                log_config(inst, false);
            }
        }
        Err(errors) => {
            for e in &errors {
                od_error!(inst.logger, "config", None, None, "{e}");
            }
            od_error!(
                inst.logger,
                "config",
                None,
                None,
                "reload failed, the old config stays"
            );
        }
    }
}

/// `log_config`: the config and its rules at start; the rules after a reload (as upstream).
pub fn log_config(inst: &Instance, with_globals: bool) {
    let snapshot = inst.config();
    let globals = with_globals.then(|| crate::config::dump::globals(&snapshot.config));
    let lines = globals
        .into_iter()
        .flatten()
        .chain(crate::config::dump::rules(&snapshot.config));
    for (context, line) in lines {
        od_info!(inst.logger, context, None, None, "{line}");
    }
}

/// `RELOAD` from the console: the reload runs on the system machine (a worker's coroutine
/// stack is sized for sessions, not for parsing a config), and this waits for it.
pub fn reload_from_console(inst: &Arc<Instance>) {
    match inst.system_machine() {
        Some(system) => {
            let inst = inst.clone();
            let _ = system
                .spawn(move || reload(&inst))
                .join(machinarium::Deadline::Never);
        }
        None => reload(inst),
    }
}

/// `KILL_CLIENT`: marks the client and wakes every parked session, so that the marked one
/// ends now rather than at its next message. False when no client has that id.
pub fn kill(inst: &Instance, id: &str) -> bool {
    if !inst.client_list.kill(id) {
        return false;
    }
    od_info!(inst.logger, "console", None, None, "client {id} killed");
    inst.wake_workers();
    true
}

/// `PAUSE [db]`: clients that need a server wait until `RESUME`.
pub fn pause(inst: &Instance, database: Option<&str>) {
    inst.pause.set(database, true);
    od_info!(
        inst.logger,
        "pause",
        None,
        None,
        "pause is on for {}",
        database.unwrap_or("every database")
    );
}

/// `RESUME [db]`.
pub fn resume(inst: &Instance, database: Option<&str>) {
    inst.pause.set(database, false);
    od_info!(
        inst.logger,
        "pause",
        None,
        None,
        "pause is off for {}",
        database.unwrap_or("every database")
    );
}

/// `DROP SERVERS`: every server is marked offline; idle ones close now, active ones when
/// their client gives them back.
pub fn drop_servers(inst: &Instance) {
    let mut marked = 0;
    for route in inst.router.routes() {
        for server in route.servers() {
            server.set_offline();
            marked += 1;
        }
        router::close_idle(&route);
    }
    od_info!(
        inst.logger,
        "console",
        None,
        None,
        "DROP SERVERS: {marked} server(s) marked offline"
    );
}
