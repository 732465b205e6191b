/**
 * The text of `thaw help` (and of a `thaw` without a command, on standard error).
 *
 * @module
 */

/** What `thaw help` prints. */
export const USAGE =
  `thaw: disaster-recovery runbooks that bring the service back before all data is home

usage: thaw COMMAND [FLAGS]

commands
  plan FILE                     validate; show the graph, critical path, lower bounds and the
                                simulated TTR/BTN of every strategy
  run FILE                      the real recovery
  drill [FILE|DIR]...           rehearse for real with the drill overrides (default: every
                                runbook in runbooks/); --simulate: in virtual time instead
  resume RUN_ID [--from STEP]   continue an interrupted or failed run (done steps are not run
                                again); --from: run STEP and everything after it again
  status [RUN_ID]               the runs in the store, newest first, or one run's report
  approve RUN_ID STEP           approve a step waiting for approval, or run again a step that
                                was running when its engine stopped
  done RUN_ID STEP              mark a waiting step done by hand (a person did it)
  cancel RUN_ID                 cancel a run (works from another process)
  standby                       stand by for the runs of a shared store (--store postgres://…):
                                take over a run whose engine died and carry it on
  serve                         the HTTP status API over the store (--listen, default
                                127.0.0.1:7070)
  schema [--output FILE]        print the JSON Schema of the runbook format
  help                          this text

flags
  --strategy serial|lazy|aggressive   override the runbook's strategy
  --var NAME=VALUE                    override a var (repeatable)
  --json                              the report(s) as JSON on stdout, one per line
  --report FILE                       also write the report(s) to FILE, in the format its
                                      extension names: .json, .html, .md (Markdown), .xml (JUnit)
  --html FILE                         plan: the simulated timeline of each strategy as a page
  --store PATH|URL                    the state store: an SQLite file or postgres://USER@HOST/DB
                                      (default $THAW_STORE, else .thaw/state.db here)
  --listen HOST:PORT                  serve the status API (run, drill, resume, serve)
  --token TOKEN                       the token approve and cancel need over HTTP
                                      (default: $THAW_TOKEN; none: changes are refused)

exit codes: 0 done and objectives met, 1 a step failed or the run was cancelled,
            2 invalid runbook or usage, 3 done but an objective was missed,
            4 the engine lost its run's lease (a standby took it over) or its store
              mid-run: it stopped its steps and changed nothing more`;
