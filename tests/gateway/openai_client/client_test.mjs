// The official `openai` npm client, unchanged, against `tokenpool serve`: chat, streaming (with
// and without usage), and the errors it maps to its own exception classes. Run by
// gateway_tests (GatewayServerTest.OfficialOpenAiClient) as
//   node client_test.mjs BASE_URL API_KEY MODEL
// Exits 0 and prints "ok" when every check passes; else prints the failed check and exits 1.
import OpenAI from "openai";

const [baseURL, apiKey, model] = process.argv.slice(2);
if (!baseURL || !apiKey || !model) {
  console.error("usage: node client_test.mjs BASE_URL API_KEY MODEL");
  process.exit(2);
}

function check(cond, what) {
  if (!cond) {
    console.error("FAILED: " + what);
    process.exit(1);
  }
}

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 30000 });
const messages = [{ role: "user", content: "Say something about token pools." }];

// Non-streaming chat.
const chat = await client.chat.completions.create({ model, messages, max_tokens: 8 });
check(chat.object === "chat.completion", "chat.object is chat.completion: " + chat.object);
check(typeof chat.choices[0].message.content === "string" &&
        chat.choices[0].message.content.length > 0,
      "chat has content");
check(chat.usage && chat.usage.prompt_tokens > 0 && chat.usage.completion_tokens === 8,
      "chat usage: " + JSON.stringify(chat.usage));
// The raw response carries the gateway's headers.
const { response } = await client.chat.completions
    .create({ model, messages, max_tokens: 2 })
    .withResponse();
check(response.headers.get("x-tokenpool-pool") === "short",
      "x-tokenpool-pool: " + response.headers.get("x-tokenpool-pool"));
check(response.headers.get("x-request-id"), "x-request-id present");

// Streaming without include_usage: content chunks, no usage chunk (the gateway asked upstream
// for usage and removed it).
let text = "";
let chunks = 0;
let sawUsage = false;
const stream = await client.chat.completions.create({ model, messages, max_tokens: 6, stream: true });
for await (const chunk of stream) {
  ++chunks;
  if (chunk.usage) sawUsage = true;
  for (const c of chunk.choices) text += c.delta?.content ?? "";
}
check(chunks >= 6 && text.length > 0, `stream: ${chunks} chunks, text ${JSON.stringify(text)}`);
check(!sawUsage, "stream without include_usage has no usage");

// Streaming with include_usage: the usage chunk arrives last.
let usage = null;
const stream2 = await client.chat.completions.create({
  model, messages, max_tokens: 5, stream: true, stream_options: { include_usage: true },
});
for await (const chunk of stream2) {
  if (chunk.usage) usage = chunk.usage;
}
check(usage && usage.completion_tokens === 5, "stream usage: " + JSON.stringify(usage));

// Errors: the client's own classes, with OpenAI's codes.
try {
  await new OpenAI({ baseURL, apiKey: "sk-wrong", maxRetries: 0 }).chat.completions.create({
    model, messages, max_tokens: 4,
  });
  check(false, "a bad key is refused");
} catch (e) {
  check(e instanceof OpenAI.AuthenticationError, "401 is AuthenticationError: " + e);
  check(e.status === 401 && e.code === "invalid_api_key", `401 code: ${e.status} ${e.code}`);
}
try {
  await client.chat.completions.create({ model: "no-such-model", messages, max_tokens: 4 });
  check(false, "an unknown model is refused");
} catch (e) {
  check(e instanceof OpenAI.NotFoundError, "404 is NotFoundError: " + e);
  check(e.code === "model_not_found", "404 code: " + e.code);
}
try {
  await client.chat.completions.create({ model, messages: "not a list", max_tokens: 4 });
  check(false, "a malformed request is refused");
} catch (e) {
  check(e instanceof OpenAI.BadRequestError, "400 is BadRequestError: " + e);
}

// Models.
const models = await client.models.list();
const ids = [];
for await (const m of models) ids.push(m.id);
check(ids.includes(model), "models lists " + model + ": " + ids.join(","));

console.log("ok");
