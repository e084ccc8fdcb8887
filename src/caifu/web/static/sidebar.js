/* The WeCom sidebar page: find the chat's customer, ask the server for his section, send
 * suitable content into the chat, move a risk alert's task one step (the server answers the
 * risk section as it now is), report a recommendation sent (once WeCom accepted the message)
 * or dismissed — the server stamps the recommendation log and audits it.
 *
 * Inside WeCom (the page has `window.ww`, the @wecom/jssdk bundle a deployment serves as
 * static/wecom-jssdk.js): ww.register with the agent-config signature from …/jsapi, then
 * ww.getCurExternalContact() gives the external_userid. In a normal browser there is no `ww`:
 * the external_userid is taken from the query parameter ?ctx= (testing and demo), and the page
 * says so. Either way the id is only a claim — the server checks the follow relation and the
 * advisor's scope before it shows anything.
 */
(function () {
  "use strict";
  var root = document.getElementById("sidebar");
  var main = document.getElementById("main");
  var base = root.getAttribute("data-base");
  var inWeCom = typeof window.ww !== "undefined";
  var current = null;  // the chat's external_userid, once known

  function say(text) {
    main.innerHTML = "";
    var p = document.createElement("p");
    p.className = "muted";
    p.textContent = text;
    main.appendChild(p);
  }

  function load(externalUserid) {
    current = externalUserid;
    return fetch(base + "/card", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ external_userid: externalUserid })
    }).then(function (r) {
      if (r.status === 401) {  // the 15-minute session ended: sign in again through OAuth
        window.location.replace(base + window.location.search);
        return null;
      }
      return r.text();
    }).then(function (html) {
      if (html !== null) { main.innerHTML = html; }  // server-rendered, escaped there
    }).catch(function () { say("网络异常，请稍后重试。"); });
  }

  function weComContact() {
    window.ww.register({
      corpId: root.getAttribute("data-corp-id"),
      agentId: Number(root.getAttribute("data-agent-id")),
      jsApiList: ["getContext", "getCurExternalContact", "sendChatMessage"],
      getAgentConfigSignature: function (url) {
        return fetch(base + "/jsapi?url=" + encodeURIComponent(url), { credentials: "same-origin" })
          .then(function (r) { return r.json(); });
      }
    });
    return window.ww.getCurExternalContact().then(function (res) { return res.userId; });
  }

  function outcome(item, what) {  // a recommendation (li[data-rec]) sent or dismissed
    return fetch(base + "/recommendation", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ external_userid: current, rec_id: item.getAttribute("data-rec"),
                             outcome: what })
    }).then(function (r) {
      if (r.status === 401) { window.location.replace(base + window.location.search); }
      return r.ok;
    });
  }

  function sendText(button) {
    var holder = button.closest("li, article") || button.parentNode;
    var pre = holder.querySelector(".send-text");
    var text = pre.textContent;
    var item = button.closest("[data-rec]");
    if (inWeCom) {
      window.ww.sendChatMessage({ msgtype: "text", text: { content: text } })
        .then(function () {
          if (item && current) {
            return outcome(item, "sent").then(function (ok) {
              if (ok) { button.textContent = "已发送"; button.disabled = true; }
            });
          }
        })
        .catch(function () { pre.hidden = false; });
    } else {  // outside WeCom nothing can be sent: show the text that would go out
      pre.hidden = false;
      button.textContent = "不在企业微信中：请复制以下文本";
      button.disabled = true;
    }
  }

  function moveTask(button) {
    var alert = button.closest("[data-task]");
    var section = button.closest("section.risk");
    var reason = alert.querySelector(".risk-reason");
    button.disabled = true;
    fetch(base + "/risk-task", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ external_userid: current, task_id: alert.getAttribute("data-task"),
                             status: button.getAttribute("data-status"),
                             reason: reason ? reason.value : "" })
    }).then(function (r) {
      if (r.status === 401) {
        window.location.replace(base + window.location.search);
        return null;
      }
      return r.text();
    }).then(function (html) {
      if (html !== null) { section.outerHTML = html; }  // server-rendered, escaped there
    }).catch(function () {
      button.disabled = false;
      say("网络异常，请稍后重试。");
    });
  }

  function dismiss(button) {
    var item = button.closest("[data-rec]");
    button.disabled = true;
    outcome(item, "dismissed").then(function (ok) {
      if (ok) { item.classList.add("dismissed"); button.textContent = "已标记不合适"; }
      else { button.disabled = false; }
    }).catch(function () { button.disabled = false; say("网络异常，请稍后重试。"); });
  }

  main.addEventListener("click", function (e) {
    var t = e.target;
    if (t && t.classList && t.classList.contains("send")) { sendText(t); }
    if (t && t.classList && t.classList.contains("rec-dismiss") && current) { dismiss(t); }
    if (t && t.classList && t.classList.contains("risk-step") && current) { moveTask(t); }
  });

  if (inWeCom) {
    weComContact().then(function (id) {
      if (id) { load(id); } else { say("请在与客户的单聊中打开侧边栏。"); }
    }, function () { say("请在与客户的单聊中打开侧边栏。"); });
  } else {
    document.getElementById("demo-note").hidden = false;
    var ctx = new URLSearchParams(window.location.search).get("ctx");
    if (ctx) { load(ctx); } else { say("未在企业微信中：请在地址后加 ?ctx=外部联系人ID。"); }
  }
})();
