// nnisuite's preload for NNI's manager (Node), loaded with NODE_OPTIONS="--require <this file>"
// into the managers nnisuite starts (experiments/binding.py sets the environment); the installed
// NNI is not changed. Only a process running nni_node/main.js is touched; any other Node program
// that inherits NODE_OPTIONS is left alone. Two fixes:
//
// 1. Listen on the addresses in NNISUITE_BIND_HOSTS (comma-separated; default 127.0.0.1) instead
//    of every interface. NNI 3.0's REST server calls `app.listen(port)` with no host
//    (nni_node/rest_server), so Node listens everywhere, unauthenticated. The first address is
//    the server NNI knows (its errors are NNI's: EADDRINUSE ends the manager as before); each
//    further address gets a server of its own that hands every request and WebSocket upgrade to
//    it, and closes with it. `::1` is optional (a machine without IPv6 loopback skips it); any
//    other address that cannot be bound ends the manager with one line on stderr.
// 2. Wait NNISUITE_DISPATCHER_TIMEOUT_S (default 120) seconds, not NNI's 10, for the tuner's
//    dispatcher to connect (nni_node/core/tuner_command_channel.js): on a loaded machine its
//    Python start (about 1.6 s of CPU importing NNI and the tuner) took longer than 10 s, and
//    NNI then put the experiment in ERROR before the dispatcher had even connected.
//
// By hand, to keep a plain `nnictl create` private:
//   NODE_OPTIONS="--require /path/to/nnisuite/experiments/nni_node_preload.js" nnictl create ...
"use strict";

const http = require("http");
const net = require("net");

const script = process.argv[1] || "";
const hosts = (process.env.NNISUITE_BIND_HOSTS || "127.0.0.1")
  .split(",")
  .map((h) => h.trim())
  .filter(Boolean);
const EVERYWHERE = new Set(["0.0.0.0", "::", "*"]);

const manager = /nni_node[\\/]main\.js$/.test(script);

if (manager) {
  const waitS = Number(process.env.NNISUITE_DISPATCHER_TIMEOUT_S || 120);
  const realSetTimeout = global.setTimeout;
  const patched = function (callback, ms, ...rest) {
    if (ms === 10000 && /tuner_command_channel/.test(new Error().stack || "")) {
      ms = waitS * 1000; // NNI's "Tuner did not connect in 10 seconds"
    }
    return realSetTimeout.call(this, callback, ms, ...rest);
  };
  Object.defineProperties(patched, Object.getOwnPropertyDescriptors(realSetTimeout));
  global.setTimeout = patched;
}

if (manager && !hosts.some((h) => EVERYWHERE.has(h))) {
  const listen = net.Server.prototype.listen;
  let bound = false;

  net.Server.prototype.listen = function nnisuiteListen(...args) {
    const portOnly =
      (typeof args[0] === "number" || /^\d+$/.test(String(args[0]))) &&
      typeof args[1] !== "string";
    if (bound || !(this instanceof http.Server) || !portOnly) {
      return listen.apply(this, args);
    }
    bound = true;
    const server = this;
    const rest = args.slice(1);
    server.once("listening", () => {
      const port = server.address().port;
      for (const host of hosts.slice(1)) {
        const extra = http.createServer();
        extra.on("request", (req, res) => server.emit("request", req, res));
        extra.on("upgrade", (req, socket, head) => server.emit("upgrade", req, socket, head));
        extra.on("error", (error) => {
          if (host === "::1") {
            return; // no IPv6 loopback here: 127.0.0.1 serves this machine
          }
          process.stderr.write(
            `nnisuite: NNI's manager cannot listen on ${host}:${port} (${error.code}): ` +
              "is it an address of this machine?\n",
          );
          server.emit("error", error);
        });
        server.on("close", () => extra.close());
        const closeAll = server.closeAllConnections;
        if (typeof closeAll === "function") {
          server.closeAllConnections = function () {
            extra.closeAllConnections();
            return closeAll.call(server);
          };
        }
        listen.call(extra, port, host);
      }
    });
    return listen.call(server, args[0], hosts[0], ...rest);
  };
}
