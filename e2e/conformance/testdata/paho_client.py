#!/usr/bin/env python3
"""Paho Python (Debian's python3-paho-mqtt) as e2e/conformance drives it.

Commands arrive as JSON lines on stdin; what the library saw leaves as JSON
lines on stdout. Every command names a connection ("conn") and most carry
an "id" that their answer repeats:

  {"op":"connect","conn":"a","id":"1","url":"tcp://h:p"|"ws://h:p/mqtt","version":4|5,
   "client_id":"…","username":"…","password":"…","props":{"receive_maximum":0,…}}
      -> {"ev":"connack","rc":N,"props":{…}} or {"ev":"connect_error","error":"…"}
  {"op":"subscribe","conn":"a","id":"2","topic":"…","qos":1} -> {"ev":"suback","codes":[…]}
  {"op":"publish","conn":"a","id":"3","topic":"…","payload":"<base64>","qos":1}
      -> {"ev":"puback","rc":N} (QoS 1: when the library reports the ack)
  {"op":"disconnect","conn":"a"}

Unprompted: {"ev":"message","topic","payload"}, {"ev":"disconnect","rc"},
{"ev":"log","level","msg"} (the library's warnings and errors) and
{"ev":"crash","error"} when an exception kills the library's network
thread. A command the library itself refuses is answered
{"ev":"refused_by_library","error":"…"}.

The PUBACK reason code is read from the packet the library is handling
(Paho Python 1.6 parses it but does not pass it on); the library's own
handling runs unchanged.
"""

import base64
import json
import sys
import threading
import traceback
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import MQTTException, Properties

_out = threading.Lock()


def emit(**ev):
    line = json.dumps(ev)
    with _out:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def excepthook(args):
    name = args.thread.name if args.thread else ""
    conn = name[len("paho-"):] if name.startswith("paho-") else ""
    emit(ev="crash", conn=conn, error="%s: %s" % (args.exc_type.__name__, args.exc_value),
         trace="".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))[-2000:])


threading.excepthook = excepthook

PROPS = {  # CONNACK property name in Paho -> the harness's name
    "MaximumPacketSize": "maximum_packet_size",
    "RetainAvailable": "retain_available",
    "WildcardSubscriptionAvailable": "wildcard_subscription_available",
    "SharedSubscriptionAvailable": "shared_subscription_available",
    "SubscriptionIdentifierAvailable": "subscription_identifier_available",
    "TopicAliasMaximum": "topic_alias_maximum",
    "ReceiveMaximum": "receive_maximum",
    "AssignedClientIdentifier": "assigned_client_identifier",
    "ServerKeepAlive": "server_keep_alive",
    "MaximumQoS": "maximum_qos",
}


def code(rc):
    """An int from Paho's ReasonCodes, int, or list."""
    if rc is None:
        return None
    if hasattr(rc, "value"):
        return rc.value
    return int(rc)


class Conn:
    def __init__(self, name, cmd):
        self.name = name
        self.v5 = cmd["version"] == 5
        u = urlparse(cmd["url"])
        transport = "websockets" if u.scheme in ("ws", "wss") else "tcp"
        kw = {"protocol": mqtt.MQTTv5 if self.v5 else mqtt.MQTTv311, "transport": transport,
              "reconnect_on_failure": False}
        if not self.v5:
            kw["clean_session"] = True
        self.c = mqtt.Client(client_id=cmd.get("client_id", ""), **kw)
        if transport == "websockets":
            self.c.ws_set_options(path=u.path or "/mqtt")
        self.c.username_pw_set(cmd.get("username", ""), cmd.get("password", ""))
        self.lock = threading.Lock()
        self.pending = {}  # mid -> (kind, id)
        self.early = {}  # mid -> answer that came before publish() returned
        self.reasons = {}  # mid -> PUBACK/PUBREC reason code on the wire
        self.connect_id = cmd.get("id", "")
        self.c.on_connect = self.on_connect
        self.c.on_disconnect = self.on_disconnect
        self.c.on_message = self.on_message
        self.c.on_publish = self.on_publish
        self.c.on_subscribe = self.on_subscribe
        self.c.on_log = self.on_log
        self._wrap("_handle_pubackcomp")
        self._wrap("_handle_pubrec")
        orig_disconnect = self.c._handle_disconnect

        def handle_disconnect():  # only called for MQTT 5, as the protocol says
            pk = self.c._in_packet["packet"]
            emit(ev="disconnect", conn=self.name, packet=True, rc=pk[0] if len(pk) > 0 else 0)
            return orig_disconnect()

        self.c._handle_disconnect = handle_disconnect
        props = None
        if self.v5 and cmd.get("props"):
            props = Properties(PacketTypes.CONNECT)
            p = cmd["props"]
            if "receive_maximum" in p:
                props.ReceiveMaximum = p["receive_maximum"]
            if "maximum_packet_size" in p:
                props.MaximumPacketSize = p["maximum_packet_size"]
        kwc = {"keepalive": 60}
        if self.v5:
            kwc["clean_start"] = True
            if props is not None:
                kwc["properties"] = props
        self.c.connect(u.hostname, u.port, **kwc)
        self.c.loop_start()
        self.c._thread.name = "paho-" + name

    def _wrap(self, method):
        orig = getattr(self.c, method)

        def wrapped(*a, **kw):
            pk = self.c._in_packet["packet"]
            if len(pk) >= 2:
                mid = int.from_bytes(pk[:2], "big")
                rc = pk[2] if len(pk) > 2 else 0
                with self.lock:
                    self.reasons[mid] = rc
                emit(ev="wire", conn=self.name, kind=method[len("_handle_"):], rc=rc)
            return orig(*a, **kw)

        setattr(self.c, method, wrapped)

    def answer(self, mid, kind, **ev):
        with self.lock:
            got = self.pending.pop(mid, None)
            if got is None:
                self.early[mid] = (kind, ev)
                return
        emit(ev=kind, conn=self.name, id=got[1], **ev)

    def register(self, mid, kind, ident):
        with self.lock:
            e = self.early.pop(mid, None)
            if e is None:
                self.pending[mid] = (kind, ident)
                return
        emit(ev=e[0], conn=self.name, id=ident, **e[1])

    def on_connect(self, client, userdata, flags, rc, properties=None):
        ev = {"rc": code(rc)}
        if properties is not None:
            ev["props"] = {PROPS[k]: v for k, v in properties.json().items() if k in PROPS}
        emit(ev="connack", conn=self.name, id=self.connect_id, **ev)

    def on_disconnect(self, client, userdata, rc, properties=None):
        emit(ev="disconnect", conn=self.name, rc=code(rc))

    def on_message(self, client, userdata, msg):
        emit(ev="message", conn=self.name, topic=msg.topic,
             payload=base64.b64encode(msg.payload).decode())

    def on_publish(self, client, userdata, mid):
        with self.lock:
            rc = self.reasons.pop(mid, 0)
        self.answer(mid, "puback", rc=rc)

    def on_subscribe(self, client, userdata, mid, granted, properties=None):
        self.answer(mid, "suback", codes=[code(g) for g in granted])

    def on_log(self, client, userdata, level, buf):
        if level in (mqtt.MQTT_LOG_ERR, mqtt.MQTT_LOG_WARNING):
            emit(ev="log", conn=self.name, level=level, msg=buf)

    def publish(self, cmd):
        info = self.c.publish(cmd["topic"], base64.b64decode(cmd.get("payload", "")), qos=cmd.get("qos", 1))
        if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
            emit(ev="refused_by_library", conn=self.name, id=cmd["id"], error=mqtt.error_string(info.rc))
            return
        if cmd.get("qos", 1) == 0:
            emit(ev="puback", conn=self.name, id=cmd["id"], rc=0)
            return
        self.register(info.mid, "puback", cmd["id"])

    def subscribe(self, cmd):
        rc, mid = self.c.subscribe(cmd["topic"], qos=cmd.get("qos", 1))
        if rc != mqtt.MQTT_ERR_SUCCESS:
            emit(ev="refused_by_library", conn=self.name, id=cmd["id"], error=mqtt.error_string(rc))
            return
        self.register(mid, "suback", cmd["id"])

    def close(self):
        try:
            self.c.disconnect()
        except Exception:
            pass
        self.c.loop_stop()


def main():
    conns = {}
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        name = cmd.get("conn", "")
        try:
            if cmd["op"] == "connect":
                old = conns.pop(name, None)
                if old:
                    old.close()
                conns[name] = Conn(name, cmd)
            elif cmd["op"] == "publish":
                conns[name].publish(cmd)
            elif cmd["op"] == "subscribe":
                conns[name].subscribe(cmd)
            elif cmd["op"] == "disconnect":
                c = conns.pop(name, None)
                if c:
                    c.close()
                emit(ev="closed", conn=name, id=cmd.get("id", ""))
            else:
                emit(ev="refused_by_library", conn=name, id=cmd.get("id", ""), error="unknown op")
        except (ValueError, TypeError, MQTTException) as e:  # the library refused the call
            emit(ev="refused_by_library", conn=name, id=cmd.get("id", ""), error="%s: %s" % (type(e).__name__, e))
        except Exception as e:  # connect refused at the socket, …
            emit(ev="connect_error" if cmd["op"] == "connect" else "refused_by_library", conn=name,
                 id=cmd.get("id", ""), error="%s: %s" % (type(e).__name__, e))
    for c in conns.values():
        c.close()


if __name__ == "__main__":
    main()
