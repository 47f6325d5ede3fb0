// mqtt.js as e2e/conformance drives it: the same JSON-lines commands and
// events as ../paho_client.py (see there). Install its dependency with
// `npm ci` in this directory; the Go test does that itself in a temporary
// directory when node_modules is missing.
"use strict";

const readline = require("node:readline");
const mqtt = require("mqtt");

function emit(ev) {
  process.stdout.write(JSON.stringify(ev) + "\n");
}

process.on("uncaughtException", (err) => emit({ ev: "crash", conn: "", error: String(err && err.stack || err) }));
process.on("unhandledRejection", (err) => emit({ ev: "crash", conn: "", error: String(err && err.stack || err) }));

const PROPS = {
  maximumPacketSize: "maximum_packet_size",
  retainAvailable: "retain_available",
  wildcardSubscriptionAvailable: "wildcard_subscription_available",
  sharedSubscriptionAvailable: "shared_subscription_available",
  subscriptionIdentifiersAvailable: "subscription_identifier_available",
  topicAliasMaximum: "topic_alias_maximum",
  receiveMaximum: "receive_maximum",
  assignedClientIdentifier: "assigned_client_identifier",
  serverKeepAlive: "server_keep_alive",
  maximumQoS: "maximum_qos",
};

function props(p) {
  const out = {};
  for (const [k, v] of Object.entries(p || {})) {
    if (PROPS[k]) out[PROPS[k]] = typeof v === "boolean" ? (v ? 1 : 0) : v;
  }
  return out;
}

const conns = new Map();

function connect(cmd) {
  const name = cmd.conn;
  const old = conns.get(name);
  if (old) old.end(true);
  const opts = {
    protocolVersion: cmd.version,
    clientId: cmd.client_id || "",
    username: cmd.username,
    password: cmd.password,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 10000,
    keepalive: 60,
  };
  if (cmd.version === 5 && cmd.props) {
    opts.properties = {};
    if ("receive_maximum" in cmd.props) opts.properties.receiveMaximum = cmd.props.receive_maximum;
    if ("maximum_packet_size" in cmd.props) opts.properties.maximumPacketSize = cmd.props.maximum_packet_size;
  }
  let c;
  try {
    c = mqtt.connect(cmd.url, opts);
  } catch (err) {
    emit({ ev: "connect_error", conn: name, id: cmd.id, error: String(err.message || err) });
    return;
  }
  conns.set(name, c);
  let answered = false;
  // mqtt.js advertises receive maximum 65535 instead of an invalid one
  // (client.js: _receiveMaximum): it never sends the 0 asked for.
  let rewritten = "";
  if (opts.properties && "receiveMaximum" in opts.properties && c._receiveMaximum !== opts.properties.receiveMaximum) {
    rewritten = `receiveMaximum ${opts.properties.receiveMaximum} is sent as ${c._receiveMaximum}`;
  }
  c.on("packetreceive", (pk) => {
    if (pk.cmd === "connack" && !answered && rewritten) {
      answered = true;
      emit({ ev: "refused_by_library", conn: name, id: cmd.id, error: "mqtt.js changed the CONNECT: " + rewritten });
      return;
    }
    if (pk.cmd === "connack" && !answered) {
      answered = true;
      const rc = cmd.version === 5 ? pk.reasonCode : pk.returnCode;
      emit({ ev: "connack", conn: name, id: cmd.id, rc: rc || 0, props: props(pk.properties) });
    }
  });
  c.on("error", (err) => {
    if (!answered && err && err.code !== undefined && typeof err.code === "number") {
      // a refused CONNACK that packetreceive already answered: nothing to add
    }
    emit({ ev: "log", conn: name, level: "error", msg: String(err && err.message || err), code: err && err.code });
  });
  c.on("disconnect", (pk) => emit({ ev: "disconnect", conn: name, rc: pk.reasonCode || 0, packet: true }));
  c.on("close", () => {
    if (!answered) {
      answered = true;
      emit({ ev: "connect_error", conn: name, id: cmd.id, error: "closed before CONNACK" });
    }
    emit({ ev: "close", conn: name });
  });
  c.on("message", (topic, payload) => emit({ ev: "message", conn: name, topic, payload: Buffer.from(payload).toString("base64") }));
}

function withConn(cmd, fn) {
  const c = conns.get(cmd.conn);
  if (!c) {
    emit({ ev: "refused_by_library", conn: cmd.conn, id: cmd.id, error: "no such connection" });
    return;
  }
  try {
    fn(c);
  } catch (err) {
    emit({ ev: "refused_by_library", conn: cmd.conn, id: cmd.id, error: String(err && err.message || err) });
  }
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  if (!line.trim()) return;
  const cmd = JSON.parse(line);
  switch (cmd.op) {
    case "connect":
      connect(cmd);
      break;
    case "publish":
      withConn(cmd, (c) => {
        c.publish(cmd.topic, Buffer.from(cmd.payload || "", "base64"), { qos: cmd.qos ?? 1 }, (err, pk) => {
          if (err && err.code === undefined) {
            emit({ ev: "refused_by_library", conn: cmd.conn, id: cmd.id, error: String(err.message || err) });
            return;
          }
          emit({ ev: "puback", conn: cmd.conn, id: cmd.id, rc: (err && err.code) || (pk && pk.reasonCode) || 0 });
        });
      });
      break;
    case "subscribe":
      withConn(cmd, (c) => {
        c.subscribe(cmd.topic, { qos: cmd.qos ?? 1 }, (err, granted) => {
          if (err) { // a refused subscription: the SUBACK is on the error
            const codes = (err.packet && err.packet.granted) || [err.code ?? -1];
            emit({ ev: "suback", conn: cmd.conn, id: cmd.id, codes, error: String(err.message || err) });
            return;
          }
          emit({ ev: "suback", conn: cmd.conn, id: cmd.id, codes: (granted || []).map((g) => g.qos) });
        });
      });
      break;
    case "disconnect": {
      const c = conns.get(cmd.conn);
      conns.delete(cmd.conn);
      if (c) c.end(true);
      emit({ ev: "closed", conn: cmd.conn, id: cmd.id || "" });
      break;
    }
    default:
      emit({ ev: "refused_by_library", conn: cmd.conn, id: cmd.id, error: "unknown op" });
  }
});
rl.on("close", () => {
  for (const c of conns.values()) c.end(true);
  setTimeout(() => process.exit(0), 200);
});
