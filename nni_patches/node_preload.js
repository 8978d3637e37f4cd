// nnisuite's preload for NNI's manager (Node), loaded with NODE_OPTIONS="--require <this file>"
// into the managers nnisuite starts (nni_patches/binding.py sets the environment); the installed
// NNI is not changed. Only a process running nni_node/main.js is touched; any other Node program
// that inherits NODE_OPTIONS is left alone. Its fixes:
//
// 1. Listen on the addresses in NNISUITE_BIND_HOSTS (comma-separated; default 127.0.0.1,::1) instead
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
// 3. Notice a remote host that is gone. NNI 3.0 pings each remote worker every 5 s but never
//    drops a silent connection: after 4 missing pongs it sends a no-op, and on a half-open TCP
//    connection (a host powered off, its link down) the send succeeds into the buffer and resets
//    the count (common/command_channel/websocket/connection.js, heartbeat). The study then
//    stalls: the trials there stay RUNNING and the next trial given to that worker blocks the
//    manager's scheduling. Here a remote worker's connection (a numeric channel) that has
//    answered no ping for NNISUITE_PEER_TIMEOUT_S (default 30) seconds is dropped as an error,
//    and NNI's own recovery takes over: 30 s to reconnect, then the worker is stopped (its
//    trials end), relaunched over SSH if the host answers, and otherwise left out while the
//    study goes on with the others. The tuner's own channel is never touched. Two more gaps of
//    NNI's recovery are closed (training_service/remote_v3/remote.js): a trial being created on
//    the lost worker (NNI hands trials round-robin, busy or not) waited forever for its answer
//    and held up the manager's whole loop: it now ends when the worker is stopped, and the trial
//    is created on the next host; and the lost worker's trials end FAILED (NNI said
//    USER_CANCELED, as if someone had stopped them), with one log line naming the host.
// 4. Do not `pip install nni --upgrade` on every remote worker at every start
//    (training_service/remote_v3/worker.js): on a host with internet it replaces the worker's nni
//    with the newest release, whatever the manager's is; without, pip spends 13 s failing
//    (measured here). nnisuite's runner has already asked each host over SSH whether its Python
//    has nni and the trial's packages (config/machines.py). NNISUITE_REMOTE_PIP=1 keeps
//    NNI's upgrade. Right after, NNI asks the worker its nni version for one log line
//    (`python -c "import nni ; print(nni.__version__)"`: all of nni imported, scipy.stats with
//    it, ~2 s of the host's CPU at every worker start); here the installed version is read from
//    nni's package metadata instead (importlib.metadata: the same string, no import). NNI's own
//    query with NNISUITE_REMOTE_PIP=1. And NNI starts the worker's trial keeper with
//    `python -m nni.tools.nni_manager_scripts.create_trial_keeper_dir` and `...launch_trial_keeper`
//    (`...check_trial_keeper_alive` when a channel is lost): scripts of the standard library,
//    psutil and nni_node, which `-m` runs only after importing the whole nni package (~2.4 s of
//    the host's CPU each). Here the same files run by path (runpy.run_path, nni's folder from
//    importlib.util.find_spec, which does not import it): same code, arguments and output
//    (NNISUITE_REMOTE_PIP=1: NNI's three commands as it ships them).
// 5. Give each trial the parameters NNI recorded for it (training_service/v3/compat.js). NNI 3.0
//    queues a new trial's parameters and hands them to whichever trial asks first: two trials
//    that start together swap when the second asks first (a slow import, a busy machine). NNI
//    then records and shows each with the other's parameters, and the trial's end tells the
//    tuner the wrong parameter id: TPE drops the parameters of the trial still running, whose
//    final result then raises KeyError, and the dispatcher is dead (seen in `make test` after a
//    resume, with a plain `nni.get_next_parameter()` trial). Here a trial that asks gets its own
//    parameters from that queue (waiting up to 2 s for NNI to record the trial); resumed trials
//    (NNI's allocatedParameters) and anything else are NNI's as before.
// 6. Hand a freed trial slot over at once (NNISUITE_HANDOVER=poll: NNI's own polling). NNI 3.0's
//    manager loop (core/nnimanager.js, manageTrials) sleeps 0.5 s between rounds: a trial's end
//    waits for the next round to be seen, and the tuner's answer (NEW_TRIAL_JOB) for the round
//    after to be submitted, so a slot stayed empty about 0.8 s. Here that one sleep also ends when
//    something it waits for happens: a trial started or ended (the local training service's
//    events) or the tuner sent a command. Whichever ends it, it first waits for the metrics NNI
//    has received to be stored and sent to the tuner, so a trial's final result still reaches the
//    tuner before its TRIAL_END (NNI's poll could, rarely, send them the other way round; TPE
//    then raises KeyError and the dispatcher dies). What NNI records is unchanged: the same
//    rounds, earlier.
//
// By hand, to keep a plain `nnictl create` private:
//   NODE_OPTIONS="--require /path/to/nnisuite/nni_patches/node_preload.js" nnictl create ...
"use strict";

const http = require("http");
const net = require("net");

const script = process.argv[1] || "";
const hosts = (process.env.NNISUITE_BIND_HOSTS || "127.0.0.1,::1")
  .split(",")
  .map((h) => h.trim())
  .filter(Boolean);
const EVERYWHERE = new Set(["0.0.0.0", "::", "*"]);

const manager = /nni_node[\\/]main\.js$/.test(script);

if (manager) {
  const peerTimeoutMs = Number(process.env.NNISUITE_PEER_TIMEOUT_S || 30) * 1000;
  const Module = require("module");
  const load = Module._load;
  const patch = (WsConnection) => {
    const proto = WsConnection.prototype;
    const heartbeat = proto.heartbeat;
    const handlePong = proto.handlePong;
    const setInterval_ = proto.setHeartbeatInterval;
    proto.setHeartbeatInterval = function (interval) {
      this.nnisuiteLastPong = Date.now();
      return setInterval_.call(this, interval);
    };
    proto.handlePong = function () {
      this.nnisuiteLastPong = Date.now();
      return handlePong.call(this);
    };
    proto.heartbeat = function () {
      const silent = Date.now() - (this.nnisuiteLastPong || Date.now());
      const worker = /WsConnection\.\d+(\.\d+)?$/.test(this.log?.name || "");
      if (worker && silent >= peerTimeoutMs && !this.closing) {
        this.log.warning(`nnisuite: no pong for ${Math.round(silent / 1000)} s: peer lost`);
        clearInterval(this.heartbeatTimer);
        this.heartbeatTimer = null;
        try {
          this.ws.terminate();
        } catch (error) {
          // already gone
        }
        this.emit("error", new Error(`peer lost: no pong for ${Math.round(silent / 1000)} s`));
        return undefined;
      }
      return heartbeat.call(this);
    };
    WsConnection.nnisuitePatched = true;
  };
  const patchRemote = (Remote) => {
    const proto = Remote.prototype;
    const createTrial = proto.createTrial;
    const stopWorker = proto.stopWorker;
    proto.createTrial = function (envId, ...rest) {
      const worker = this.workersByEnv.get(envId);
      const created = createTrial.call(this, envId, ...rest);
      if (!worker) {
        return created;
      }
      const stopped = new Promise((resolve) => {
        (worker.nnisuiteWaiting ||= []).push(resolve);
      });
      return Promise.race([created, stopped]);
    };
    proto.stopWorker = function (oldWorker, ...rest) {
      const lost = [];
      this.workersByTrial.forEach((worker, trialId) => {
        if (worker === oldWorker) {
          lost.push(trialId);
        }
      });
      const now = Date.now();
      for (const trialId of lost) {
        this.workersByTrial.delete(trialId);
        this.emitter.emit("trial_stop", trialId, now, 1); // FAILED, not USER_CANCELED
      }
      this.log.warning(
        `nnisuite: worker ${oldWorker.config.host} lost; its trials end FAILED: ` +
          `${lost.join(", ") || "none"}; the study goes on with the other hosts`,
      );
      for (const resolve of oldWorker.nnisuiteWaiting || []) {
        resolve(null); // a trial being created there: NNI creates it on the next host
      }
      oldWorker.nnisuiteWaiting = [];
      return stopWorker.call(this, oldWorker, ...rest);
    };
    Remote.nnisuitePatched = true;
  };
  const NNI_VERSION_QUERY = "import nni ; print(nni.__version__)";
  const METADATA_VERSION_QUERY = "import importlib.metadata as m ; print(m.version('nni'))";
  // NNI's worker scripts that need neither nni nor its dependencies (remote_v3/worker.js)
  const WORKER_SCRIPT =
    /^(.+) -m nni\.tools\.nni_manager_scripts\.(create_trial_keeper_dir|launch_trial_keeper|check_trial_keeper_alive)( .*)?$/;
  const RUN_BY_PATH =
    "import importlib.util as u, os, runpy, sys ; " +
    "f = os.path.join(os.path.dirname(u.find_spec('nni').origin), 'tools', 'nni_manager_scripts', sys.argv[1] + '.py') ; " +
    "sys.argv = [f] + sys.argv[2:] ; runpy.run_path(f, run_name='__main__')";
  const patchSsh = (Ssh) => {
    const run = Ssh.prototype.run;
    Ssh.prototype.run = function (command, ...rest) {
      if (process.env.NNISUITE_REMOTE_PIP !== "1") {
        if (/ -m pip install nni --upgrade$/.test(command)) {
          this.log.info(`nnisuite: skipped \`${command}\` (the runner checked this host's nni)`);
          return Promise.resolve("");
        }
        const script = WORKER_SCRIPT.exec(command);
        if (script) {
          this.log.info(`nnisuite: ${script[2]} run by path (nni not imported)`);
          return run.call(this, `${script[1]} -c "${RUN_BY_PATH}" ${script[2]}${script[3] || ""}`, ...rest);
        }
        if (command.endsWith(` -c "${NNI_VERSION_QUERY}"`)) {
          const python = command.slice(0, -` -c "${NNI_VERSION_QUERY}"`.length);
          this.log.info("nnisuite: nni's version read from its package metadata (no import)");
          return run.call(this, `${python} -c "${METADATA_VERSION_QUERY}"`, ...rest);
        }
      }
      return run.call(this, command, ...rest);
    };
    Ssh.nnisuitePatched = true;
  };
  const patchCompat = (V3asV1) => {
    const start = V3asV1.prototype.start;
    V3asV1.prototype.start = function (...args) {
      const self = this;
      if (handover) {
        wakeOn(this.v3, "onTrialStart");
        wakeOn(this.v3, "onTrialEnd");
      }
      const onRequest = this.v3.onRequestParameter;
      this.v3.onRequestParameter = function (callback) {
        return onRequest.call(this, async (trialId) => {
          for (let waited = 0; !self.trialJobs[trialId] && waited < 2000; waited += 20) {
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
          const own = self.trialJobs[trialId]?.form?.hyperParameters?.value;
          const at = own === undefined ? -1 : self.parameters.indexOf(own);
          if (at > 0 && !self.allocatedParameters.has(trialId)) {
            self.parameters.splice(at, 1);
            self.parameters.unshift(own); // NNI's handler shifts the queue's head
          }
          return callback(trialId);
        });
      };
      return start.apply(this, args);
    };
    V3asV1.nnisuitePatched = true;
  };
  // 6. the hand-over: the manager loop's sleep ends early on its events
  const handover = process.env.NNISUITE_HANDOVER !== "poll";
  const metricsInFlight = new Set(); // NNIManager.onTrialJobMetrics calls not yet done
  const sleepers = new Set(); // the manager loop's sleep, when it sleeps
  let woken = false; // an event while the loop was busy: its next sleep is skipped
  const wake = () => {
    if (sleepers.size === 0) {
      woken = true;
      return;
    }
    for (const done of [...sleepers]) {
      done();
    }
  };
  const metricsStored = () => Promise.allSettled([...metricsInFlight]);
  const loopSleep = (ms) =>
    new Promise((resolve) => {
      if (woken) {
        woken = false;
        metricsStored().then(() => resolve());
        return;
      }
      const done = () => {
        clearTimeout(timer);
        sleepers.delete(done);
        metricsStored().then(() => resolve());
      };
      const timer = setTimeout(done, ms);
      sleepers.add(done);
    });
  const patchUtils = (utils) => {
    const delay = utils.delay;
    utils.delay = function (ms, ...rest) {
      if (/NNIManager\.manageTrials /.test(new Error().stack || "")) {
        return loopSleep(ms);
      }
      return delay.call(this, ms, ...rest);
    };
    utils.nnisuitePatched = true;
  };
  const patchManager = (NNIManager) => {
    const proto = NNIManager.prototype;
    const onMetrics = proto.onTrialJobMetrics;
    const onTunerCommand = proto.onTunerCommand;
    proto.onTrialJobMetrics = function (...args) {
      const running = onMetrics.apply(this, args);
      const settled = running.finally(() => metricsInFlight.delete(settled));
      settled.catch(() => {}); // NNI's own listener reports the error
      metricsInFlight.add(settled);
      return running;
    };
    proto.onTunerCommand = function (...args) {
      const running = onTunerCommand.apply(this, args); // NEW_TRIAL_JOB is queued at once
      wake();
      return running;
    };
    const manageTrials = proto.manageTrials;
    proto.manageTrials = function (...args) {
      nniLog?.getLogger("nnisuite").info(
        "trial hand-over on the manager's events (NNISUITE_HANDOVER=poll: NNI's 0.5 s polling)",
      );
      return manageTrials.apply(this, args);
    };
    NNIManager.nnisuitePatched = true;
  };
  const wakeOn = (v3, name) => {
    const register = v3[name];
    v3[name] = function (callback) {
      return register.call(this, async (...args) => {
        try {
          return await callback(...args);
        } finally {
          wake();
        }
      });
    };
  };

  let nniLog = null; // NNI's common/log, for a line in nnimanager.log
  Module._load = function (request, ...rest) {
    const exported = load.call(this, request, ...rest);
    if (exported && typeof exported.getLogger === "function" && exported.getRobustLogger) {
      nniLog = exported;
    }
    if (handover && exported && typeof exported.delay === "function" && !exported.nnisuitePatched &&
        typeof exported.getMsgDispatcherCommand === "function") {
      patchUtils(exported);
    }
    const nniManager = exported && exported.NNIManager;
    if (handover && typeof nniManager === "function" && !nniManager.nnisuitePatched &&
        nniManager.prototype.manageTrials) {
      patchManager(nniManager);
    }
    const ssh = exported && exported.Ssh;
    if (typeof ssh === "function" && !ssh.nnisuitePatched && ssh.prototype.run) {
      patchSsh(ssh);
    }
    const cls = exported && exported.WsConnection;
    if (typeof cls === "function" && !cls.nnisuitePatched && cls.prototype.heartbeat) {
      patch(cls);
    }
    const remote = exported && exported.RemoteTrainingServiceV3;
    if (typeof remote === "function" && !remote.nnisuitePatched) {
      patchRemote(remote);
    }
    const compat = exported && exported.V3asV1;
    if (typeof compat === "function" && !compat.nnisuitePatched && compat.prototype.start) {
      patchCompat(compat);
    }
    return exported;
  };
}

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
