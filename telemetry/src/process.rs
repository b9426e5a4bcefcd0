//! Process metrics (CPU time, memory, file descriptors, threads, start time) read from Linux's
//! `/proc/self` on each scrape, under the standard `process_*` names. Elsewhere nothing is
//! reported.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::names;

/// `/proc` reports times in USER_HZ, which Linux fixes at 100 for user space.
const TICKS_PER_SECOND: f64 = 100.0;

/// Reads `/proc/self` on each scrape.
#[derive(Debug, Default)]
pub struct ProcessCollector;

/// One reading of the process.
#[derive(Debug, Default, PartialEq)]
pub struct Reading {
    /// User plus system CPU seconds.
    pub cpu_seconds: f64,
    /// Resident bytes.
    pub resident_bytes: f64,
    /// Virtual bytes.
    pub virtual_bytes: f64,
    /// Threads.
    pub threads: f64,
    /// Start time, seconds since the Unix epoch.
    pub start_time: f64,
    /// Open file descriptors.
    pub open_fds: f64,
    /// The soft limit of open file descriptors.
    pub max_fds: Option<f64>,
}

/// Parses `/proc/self/stat` (after the command name, which may hold spaces), `/proc/self/status`
/// and `/proc/stat`'s boot time into a reading.
pub fn parse(stat: &str, status: &str, boot_time: f64) -> Option<Reading> {
    let after_name = &stat[stat.rfind(')')? + 2..];
    // Fields from the third (state) on: utime is the 14th field of the line, so index 11 here.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let number = |i: usize| fields.get(i)?.parse::<f64>().ok();
    let kilobytes = |key: &str| status_kib(status, key).map(|kib| kib as f64 * 1024.0);
    Some(Reading {
        cpu_seconds: (number(11)? + number(12)?) / TICKS_PER_SECOND,
        threads: number(17)?,
        start_time: boot_time + number(19)? / TICKS_PER_SECOND,
        virtual_bytes: number(20)?,
        resident_bytes: kilobytes("VmRSS:").unwrap_or(0.0),
        open_fds: 0.0,
        max_fds: None,
    })
}

/// The size a `/proc/<pid>/status` line gives, in KiB: `key` with its colon (`"VmRSS:"`).
/// `None` when the line is absent.
pub fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn read() -> Option<Reading> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let boot_time = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let mut reading = parse(&stat, &status, boot_time)?;
    reading.open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as f64;
    reading.max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
            line["Max open files".len()..]
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        });
    Some(reading)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> std::fmt::Result {
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let Some(r) = read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(r.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            names::PROCESS_CPU,
            "Total user and system CPU time spent in seconds.",
            None,
            cpu.metric_type(),
        )?)?;
        let e = &mut encoder;
        gauge(
            e,
            names::PROCESS_RESIDENT_MEMORY,
            "Resident memory size in bytes.",
            r.resident_bytes,
        )?;
        gauge(
            e,
            names::PROCESS_VIRTUAL_MEMORY,
            "Virtual memory size in bytes.",
            r.virtual_bytes,
        )?;
        gauge(
            e,
            names::PROCESS_OPEN_FDS,
            "Number of open file descriptors.",
            r.open_fds,
        )?;
        if let Some(max) = r.max_fds {
            gauge(
                e,
                names::PROCESS_MAX_FDS,
                "Maximum number of open file descriptors.",
                max,
            )?;
        }
        gauge(
            e,
            names::PROCESS_THREADS,
            "Number of OS threads in the process.",
            r.threads,
        )?;
        gauge(
            e,
            names::PROCESS_START_TIME,
            "Start time of the process since unix epoch in seconds.",
            r.start_time,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_with_spaces_in_the_name_parses() {
        let stat = "4242 (doraflow (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 \
                    7 0 12345 104857600 2000 18446744073709551615";
        let status = "Name:\tdoraflow\nVmRSS:\t  8192 kB\nThreads:\t7\n";
        let r = parse(stat, status, 1_700_000_000.0).unwrap();
        assert_eq!(r.cpu_seconds, 3.0);
        assert_eq!(r.threads, 7.0);
        assert!((r.start_time - 1_700_000_123.45).abs() < 1e-3);
        assert_eq!(r.virtual_bytes, 104_857_600.0);
        assert_eq!(r.resident_bytes, 8_388_608.0);
    }

    #[test]
    fn status_sizes_are_read_by_their_key() {
        // As this machine's kernel writes it (abridged; the huge pages as a run with
        // MAP_HUGETLB arenas held them).
        let status = "Name:\tdoraflow-bench
VmHWM:\t 2471936 kB
VmRSS:\t 2467832 kB
RssAnon:\t 2460000 kB
HugetlbPages:\t 2625536 kB
Threads:\t1
";
        assert_eq!(status_kib(status, "HugetlbPages:"), Some(2_625_536));
        assert_eq!(status_kib(status, "VmRSS:"), Some(2_467_832));
        assert_eq!(
            status_kib("VmRSS:\t 100 kB\nHugetlbPages:\t 0 kB\n", "HugetlbPages:"),
            Some(0)
        );
        assert_eq!(status_kib("VmRSS:\t 100 kB\n", "HugetlbPages:"), None);
    }

    #[test]
    fn this_process_reads() {
        let r = read().expect("/proc/self is readable on Linux");
        assert!(r.resident_bytes > 0.0 && r.threads >= 1.0 && r.open_fds >= 3.0);
    }
}
