//! Timing driver of `make bench` (see bench/run.py, which runs it and merges its output).
//! Every command prints JSON lines (see `presence_bench::out`); each lives in the module
//! of its name, which says what it measures and why.

mod check;
mod fanout;
mod host;
mod hot;
mod many;
mod poll;
mod redis;
mod threads;
mod track_untrack;

use presence_bench::args::{self, Args};

const USAGE: &str = "usage: presence-bench COMMAND [--option value ...]
  track_untrack --n N --topics T --runs R     engine (counts, phoenix) and the HashMap floor
  threads       --n N --topics T --runs R     1 and 2 threads, disjoint and shared topics
  poll          --total T --changed A,B,.. --totals A,B,.. --fixed-changed K --runs R
  hot           --n N --calls C --runs R      counts and list of one topic of N presences
  many          --held A,B,.. --ask K --calls C --runs R   counts of K topics asked at once,
                by counts_many and by a loop of counts, with A, B, .. topics held
  host          --total T --changed A,B,.. --state-n N --runs R   the host path: poll_diff and
                ready messages per changed topic, state of one phoenix topic of N presences
  fanout        --subscribers A,B,.. --churn A,B,.. --seconds S
  redis         --url URL --n N --topics T --rt-n M --batch B --runs R
  check         --n N --topics T --anonymous-every K [--url URL]";

fn main() {
    let args = Args::from_env(USAGE);
    match args.command.as_str() {
        "track_untrack" => track_untrack::run(&args),
        "threads" => threads::run(&args),
        "poll" => poll::run(&args),
        "hot" => hot::run(&args),
        "many" => many::run(&args),
        "host" => host::run(&args),
        "fanout" => fanout::run(&args),
        "redis" => redis::run(&args),
        "check" => check::run(&args),
        other => args::fail(USAGE, &format!("unknown command {other:?}")),
    }
}
