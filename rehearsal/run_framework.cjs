// Runs one handler of a synthesized Node.js Lambda asset the way the Lambda Node.js runtime does:
// require("<asset>/<module>") and await <module>.<function>(event, context).
//
//   node run_framework.cjs ASSET_DIR HANDLER OUTCOME_FILE < event.json
//
// HANDLER is the function's Handler setting (e.g. "framework.onEvent"). The outcome goes to
// OUTCOME_FILE as {"result": ...} or {"error": {"errorType", "errorMessage"}}; whatever the
// handler logs goes to stdout/stderr, as it would to CloudWatch. Nothing here replaces any of
// the asset's code: AWS SDK clients find their endpoints (AWS_ENDPOINT_URL_*) and credentials
// (AWS_ACCESS_KEY_ID, ...) in the environment, as on Lambda.
"use strict";

const fs = require("fs");
const path = require("path");

const [assetDir, handler, outcomeFile] = process.argv.slice(2);
const dot = handler.lastIndexOf(".");
const moduleName = handler.slice(0, dot);
const functionName = handler.slice(dot + 1);

function readStdin() {
  return new Promise((resolve, reject) => {
    let text = "";
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (chunk) => { text += chunk; });
    process.stdin.on("end", () => resolve(text));
    process.stdin.on("error", reject);
  });
}

async function main() {
  const event = JSON.parse(await readStdin());
  const timeoutMs = Number(process.env.REHEARSAL_TIMEOUT_MS || 900000);
  const deadline = Date.now() + timeoutMs;
  const context = {
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: "$LATEST",
    invokedFunctionArn: process.env.REHEARSAL_FUNCTION_ARN,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: process.env.REHEARSAL_REQUEST_ID,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: "rehearsal",
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    callbackWaitsForEmptyEventLoop: true,
  };
  let outcome;
  try {
    const module = require(path.resolve(assetDir, moduleName));
    const result = await module[functionName](event, context);
    outcome = { result: result === undefined ? null : result };
  } catch (error) {
    outcome = {
      error: {
        errorType: error && error.name ? error.name : typeof error,
        errorMessage: error && error.message ? error.message : String(error),
      },
    };
  }
  fs.writeFileSync(outcomeFile, JSON.stringify(outcome));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
