//! `cpu_affinity`: which CPUs each worker thread may run on (spec §2.1). `"off"`/`"no"`
//! pins nothing; `"auto"`/`"yes"` puts worker i on CPU `1 + i % (cpus - 1)` (CPU 0 left to
//! the rest); otherwise whitespace-separated rules `role[index]:cpuset`, such as
//! `"worker:0-3 worker[0]:5"`, where a rule naming the worker's index wins over the role's.

/// The parsed directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuAffinity {
    /// No pinning.
    Off,
    /// One CPU per worker, in turn, skipping CPU 0.
    Auto,
    /// Explicit sets.
    Rules(Vec<AffinityRule>),
}

/// The threads a rule pins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Worker machines.
    Worker,
    /// Upstream's handshake threads; this build has none, so such rules pin nothing.
    Handshake,
}

/// One `role[index]:cpuset` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffinityRule {
    /// Whose threads.
    pub role: Role,
    /// Which one of them; `None` for every one without a rule of its own.
    pub index: Option<u32>,
    /// The CPUs, ascending, without repeats.
    pub cpus: Vec<usize>,
}

/// CPU numbers above this are refused (as upstream's fixed-size set does).
const MAX_CPUS: usize = 1024;

impl CpuAffinity {
    /// Parses the directive's string; the error says what is wrong.
    pub fn parse(text: &str) -> Result<CpuAffinity, String> {
        match text.trim() {
            "off" | "no" => return Ok(CpuAffinity::Off),
            "auto" | "yes" => return Ok(CpuAffinity::Auto),
            _ => {}
        }
        let mut rules: Vec<AffinityRule> = Vec::new();
        for word in text.split_whitespace() {
            let rule = rule(word).ok_or_else(|| format!("bad rule '{word}'"))?;
            if rules
                .iter()
                .any(|r| r.role == rule.role && r.index == rule.index)
            {
                return Err(format!("rule '{word}' repeats a role and index"));
            }
            rules.push(rule);
        }
        if rules.is_empty() {
            return Err("no rules".into());
        }
        Ok(CpuAffinity::Rules(rules))
    }

    /// The CPUs worker `index` is pinned to on a machine of `cpus` processors; `None` leaves it
    /// alone.
    pub fn worker(&self, index: u32, cpus: usize) -> Option<Vec<usize>> {
        match self {
            CpuAffinity::Off => None,
            CpuAffinity::Auto if cpus > 1 => Some(vec![1 + index as usize % (cpus - 1)]),
            CpuAffinity::Auto => Some(vec![0]),
            CpuAffinity::Rules(rules) => {
                let of_role = |r: &&AffinityRule| r.role == Role::Worker;
                let own = rules
                    .iter()
                    .filter(of_role)
                    .find(|r| r.index == Some(index));
                let any = || rules.iter().filter(of_role).find(|r| r.index.is_none());
                own.or_else(any).map(|r| r.cpus.clone())
            }
        }
    }
}

/// `role[index]:cpuset`.
fn rule(word: &str) -> Option<AffinityRule> {
    let (head, set) = word.split_once(':')?;
    let (role, index) = match head.split_once('[') {
        Some((role, rest)) => (role, Some(rest.strip_suffix(']')?.parse().ok()?)),
        None => (head, None),
    };
    let role = match role {
        "worker" => Role::Worker,
        "handshake" => Role::Handshake,
        _ => return None,
    };
    Some(AffinityRule {
        role,
        index,
        cpus: cpuset(set)?,
    })
}

/// `0-4,6`: single CPUs and ascending ranges, comma-separated.
fn cpuset(text: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => (number(part)?, number(part)?),
        };
        if last < first || last >= MAX_CPUS {
            return None;
        }
        cpus.extend(first..=last);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Some(cpus)
}

fn number(text: &str) -> Option<usize> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_rules() {
        assert_eq!(CpuAffinity::parse("no"), Ok(CpuAffinity::Off));
        assert_eq!(CpuAffinity::parse("auto"), Ok(CpuAffinity::Auto));
        let rules = CpuAffinity::parse("worker:0-2,5 worker[1]:7 handshake:1").unwrap();
        assert_eq!(rules.worker(0, 8), Some(vec![0, 1, 2, 5]));
        assert_eq!(rules.worker(1, 8), Some(vec![7]));
        assert_eq!(CpuAffinity::Auto.worker(0, 4), Some(vec![1]));
        assert_eq!(CpuAffinity::Auto.worker(3, 4), Some(vec![1]));
        assert_eq!(CpuAffinity::Auto.worker(2, 1), Some(vec![0]));
        assert_eq!(
            CpuAffinity::parse("handshake:1").unwrap().worker(0, 4),
            None
        );
    }

    #[test]
    fn bad_text_is_refused() {
        for bad in [
            "",
            "worker",
            "worker:",
            "worker:1,",
            "worker:3-1",
            "worker[x]:1",
            "cpu:1",
            "worker:1 worker:2",
            "worker:-1",
            "worker:1-",
            "worker:99999",
        ] {
            assert!(CpuAffinity::parse(bad).is_err(), "{bad:?}");
        }
    }
}
