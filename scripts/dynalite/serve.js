// Runs dynalite's own command line (the path to its cli.js is the first argument), but keeps
// the server alive when a client drops its connection in the middle of a request. dynalite
// rethrows that as an uncaught error and exits, which a real DynamoDB endpoint never does;
// the tests kill clients with SIGKILL mid-request on purpose.
"use strict";

process.on("uncaughtException", (err) => {
  if (err && (err.code === "ECONNRESET" || err.message === "aborted")) {
    console.error("dynalite: a client connection was aborted mid-request; ignored");
    return;
  }
  console.error(err);
  process.exit(1);
});

require(process.argv[2]);
