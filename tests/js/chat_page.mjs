// Drives handoff's chat page (GET / of `handoff serve`) in Debian's headless Chromium through playwright-core
// (tests/test_chat_page.cpp): loads the page, asks each question given on the command line by typing it and
// pressing Send, waits for the reply, and prints what a person would see as JSON on stdout.
// Usage: node chat_page.mjs URL QUESTION...   (CHROMIUM=/path overrides /usr/bin/chromium)
// With API_KEY set (a server started with a key): the page must load without it and show its key field;
// the first question is asked once without the key (its reply goes to "without_key"), then the key is typed
// and every question is asked.
import { chromium } from "playwright-core";

const [url, ...questions] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
const out = { page_errors: [], replies: [] };
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => out.page_errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") out.page_errors.push(m.text()); });
  await page.goto(url, { timeout: 20000 });
  out.title = await page.title();
  if (!process.env.API_KEY)
    await page.waitForFunction(() => document.getElementById("model").textContent !== "", null, { timeout: 20000 });
  out.model = await page.textContent("#model");
  let asked = 0;
  const ask = async (q) => {
    await page.fill("#q", q);
    await page.click("#send");
    // Answered and the call rate refreshed after it (the page counts finished questions).
    await page.waitForFunction((n) => Number(document.body.dataset.answered || 0) > n, asked++, { timeout: 60000 });
    const last = page.locator(".msg.assistant, .msg.error").last();
    const reply = { error: (await last.getAttribute("class")).includes("error"), text: await last.locator(".text").textContent() };
    if (!reply.error) {
      reply.answered_by = await last.locator(".badge").getAttribute("data-by");
      reply.meta = await last.locator(".meta").textContent();
      reply.reasoning = (await last.locator("details pre").count()) ? await last.locator("details pre").textContent() : null;
    }
    return reply;
  };
  if (process.env.API_KEY) {
    await page.waitForSelector("#key:not([hidden])", { timeout: 20000 });  // asked for after the 401
    out.without_key = await ask(questions[0]);
    await page.fill("#key", process.env.API_KEY);
  }
  for (const q of questions) out.replies.push(await ask(q));
  out.model = await page.textContent("#model");
  out.rate = await page.textContent("#rate");  // read from /metrics after the last answer
} catch (e) {
  out.failure = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
