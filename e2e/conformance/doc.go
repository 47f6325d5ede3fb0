// Package conformance drives the real server (internal/imtest, in-process)
// with three MQTT libraries the way their users do — Paho Go (3.1.1:
// eclipse/paho.mqtt.golang; 5: eclipse/paho.golang), Paho Python (Debian's
// python3-paho-mqtt) and mqtt.js 5 (npm) — plus a raw TCP reader that sees
// every byte, and checks each refusal of the contract (PROTOCOL §4, §9):
// the library neither crashes nor hangs, the reason code is one MQTT 5
// allows in that packet and the one the contract names, and the error
// event reaches the inbox.
//
// The Python and Node clients are scripts in testdata that read commands
// and write what their library saw as JSON lines (see
// testdata/paho_client.py). Without python3 and paho-mqtt, or without node
// and npm, those libraries are skipped, except under CI (CI set), where
// they fail. mqtt.js is installed with npm ci from
// testdata/mqttjs/package-lock.json into testdata/mqttjs/node_modules when
// it exists there, else into a directory under the system's temporary
// directory, kept between runs.
package conformance
