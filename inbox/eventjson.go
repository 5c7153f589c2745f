package inbox

import (
	"encoding/json"
	"strconv"
	"time"
)

// AppendFrame appends the socket frame {"type":"event","event":EVENT} to
// b, byte for byte what encoding/json makes of the frame structs of both
// sockets. Every stored event goes to every agent socket and to its
// visitor: encoding/json spent more on re-encoding and re-validating the
// same event for each of them than on anything else in the fan-out.
func (e *Event) AppendFrame(b []byte) []byte {
	b = append(b, `{"type":"event","event":`...)
	b = e.AppendJSON(b)
	return append(b, '}')
}

// AppendJSON appends the event as encoding/json encodes it. Data is
// already compact JSON with HTML escaped (json.Marshal made it, here or
// before it was stored), so it is copied as it is.
func (e *Event) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, e.ID, 10)
	b = append(b, `,"conversation_id":`...)
	b = strconv.AppendInt(b, e.ConversationID, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, e.Type)
	if len(e.Data) > 0 {
		b = append(b, `,"data":`...)
		b = append(b, e.Data...)
	}
	b = append(b, `,"at":"`...)
	b = e.At.AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

// appendJSONString appends s quoted as encoding/json quotes it; event
// types are short ASCII words, the rest takes the slow path.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
