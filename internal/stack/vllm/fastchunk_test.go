package vllm

import (
	"encoding/json"
	"reflect"
	"testing"
)

var fastChunkSeeds = []string{
	`{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":" ok","logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":{"prompt_tokens":8,"total_tokens":9,"completion_tokens":1}}`,
	`{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":"","logprobs":null,"finish_reason":"length","stop_reason":null}]}`,
	`{"id":"x","object":"text_completion","choices":[],"usage":{"prompt_tokens":8,"total_tokens":72,"completion_tokens":64}}`,
	`{"choices":[{"text":"caf\u00e9"}]}`,
	`{"choices":[{"text":"a","Text":"b"}]}`,
	`{"Choices":[{"text":"a"}]}`,
	`{"choices":[{"text":"a"}],"choices":[{"text":"b"}]}`,
	`{"choices":"nonsense"}`,
	`{"choices":[null]}`,
	`{"error":{"message":"boom","type":"InternalServerError","code":500}}`,
	`{"object":"error","message":"bad","type":"BadRequestError","code":400}`,
	`{"detail":"Not Found"}`,
	`{"usage":{"completion_tokens":1.5}}`,
	`{"usage":{"completion_tokens":null,"prompt_tokens":-3}}`,
	`{"choices":[{"index":01}]}`,
	`{"choices":[{"text":"\xff"}]}`,
	` {"x":[1,2.5e-3,true,false,null,{"y":"\"z\""}],"choices":null,"usage":null} `,
	`{"choices":[{"text":"a"}]} x`,
	`{}`, `[]`, `null`, ``, `{"a":}`, `{"a" 1}`,
}

// fastChunk decodes exactly what encoding/json decodes, or declines.
func FuzzFastChunk(f *testing.F) {
	for _, s := range fastChunkSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast chunk
		if !fastChunk(data, &fast) {
			return
		}
		var slow chunk
		if err := json.Unmarshal(data, &slow); err != nil {
			t.Fatalf("fastChunk accepted %q, encoding/json: %v", data, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\nfast %+v\nslow %+v", data, fast, slow)
		}
	})
}

// The chunks a server streams per token take the fast path.
func TestFastChunkTakesTheCommonChunks(t *testing.T) {
	for _, s := range fastChunkSeeds[:3] {
		var ch chunk
		if !fastChunk([]byte(s), &ch) {
			t.Errorf("declined %s", s)
		}
	}
	// Error objects are declined, or decoded as the error they are (readStream then parses
	// them as one).
	for _, s := range []string{fastChunkSeeds[9], fastChunkSeeds[10], fastChunkSeeds[11]} {
		var ch chunk
		if fastChunk([]byte(s), &ch) && !ch.mayBeError() {
			t.Errorf("took the error object %s as a chunk", s)
		}
	}
}

func BenchmarkChunkDecode(b *testing.B) {
	data := []byte(fastChunkSeeds[0])
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			var ch chunk
			if !fastChunk(data, &ch) {
				b.Fatal("declined")
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			var ch chunk
			if err := json.Unmarshal(data, &ch); err != nil {
				b.Fatal(err)
			}
		}
	})
}
