// nnisuite's preload for NNI's manager (Node): listen on the addresses in NNISUITE_BIND_HOSTS
// (comma-separated; default 127.0.0.1) instead of every interface.
//
// NNI 3.0's REST server calls `app.listen(port)` with no host (nni_node/rest_server), so Node
// listens on every interface, unauthenticated. nnisuite starts the manager with
// NODE_OPTIONS="--require <this file>" (experiments/binding.py); the installed NNI is not
// changed. Only a process running nni_node/main.js is touched; any other Node program that
// inherits NODE_OPTIONS is left alone. The first address is the server NNI knows (its errors are
// NNI's: EADDRINUSE ends the manager as before); each further address gets a server of its own
// that hands every request and WebSocket upgrade to it, and closes with it. `::1` is optional
// (a machine without IPv6 loopback skips it); any other address that cannot be bound ends the
// manager with one line on stderr.
//
// By hand, to keep a plain `nnictl create` private:
//   NODE_OPTIONS="--require /path/to/nnisuite/experiments/binding.js" nnictl create --config x.yml
"use strict";

const http = require("http");
const net = require("net");

const script = process.argv[1] || "";
const hosts = (process.env.NNISUITE_BIND_HOSTS || "127.0.0.1")
  .split(",")
  .map((h) => h.trim())
  .filter(Boolean);
const EVERYWHERE = new Set(["0.0.0.0", "::", "*"]);

if (/nni_node[\\/]main\.js$/.test(script) && !hosts.some((h) => EVERYWHERE.has(h))) {
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
