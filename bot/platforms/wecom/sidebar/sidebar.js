// The sidebar page: asks WeCom's client (the JS-SDK `wx`) who is in the chat, then
// draws the card from our JSON. No framework: a few DOM helpers, text set as text.
(function () {
  "use strict";
  var boot = JSON.parse(document.getElementById("boot").textContent);
  var main = document.getElementById("card");
  var status = document.getElementById("status");
  var current = null;
  var sdkTries = 0;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === undefined || value === null) return;
      if (key === "text") node.textContent = value;
      else if (key === "onclick") node.addEventListener("click", value);
      else node.setAttribute(key, value);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }
  function say(text, bad) {
    status.textContent = text;
    status.className = bad ? "status problem" : "status";
  }
  function toast(text) {
    var note = el("div", { "class": "toast", role: "status", "data-testid": "toast", text: text });
    document.body.appendChild(note);
    setTimeout(function () { note.remove(); }, 3000);
  }
  function api(method, path, body) {
    var options = { method: method, credentials: "same-origin", headers: {} };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.headers["X-Sidebar-Token"] = boot.token;
      options.body = JSON.stringify(body);
    }
    return fetch(boot.api + path, options).then(function (response) {
      return response.json().then(function (data) { return { status: response.status, data: data }; });
    });
  }

  // -- WeCom's JS-SDK ---------------------------------------------------------------------
  function loadSdk(urls, done) {
    if (!urls.length) return done();
    var script = el("script", { src: urls[0] });
    script.onload = function () { loadSdk(urls.slice(1), done); };
    script.onerror = function () { say("企业微信 JS-SDK 加载失败，请检查网络后重新打开", true); };
    document.head.appendChild(script);
  }
  function signatures(stale) {
    var url = location.href.split("#")[0];
    if (!stale && boot.signed && boot.signed.url === url) return Promise.resolve(boot.signed);
    return api("GET", "/jssdk?url=" + encodeURIComponent(url) + (stale ? "&stale=1" : "")).then(function (answer) {
      return answer.status === 200 ? answer.data : Promise.reject(answer.data.message);
    });
  }
  function start(stale) {
    if (!window.wx || !window.wx.agentConfig) {
      if (sdkTries++) return say("这里不是企业微信：请在企业微信的聊天工具栏里打开", true);
      return loadSdk(boot.sdk, start);
    }
    signatures(stale).then(function (signed) {
      var wx = window.wx;
      wx.config({ beta: true, debug: false, appId: boot.corpId, timestamp: signed.config.timestamp,
                  nonceStr: signed.config.nonceStr, signature: signed.config.signature, jsApiList: boot.jsApiList });
      wx.error(function (res) {
        if (!stale) return start(true);  // a ticket WeCom dropped early: sign once more with fresh ones
        say("企业微信没有接受签名：" + ((res && res.errMsg) || ""), true);
      });
      wx.ready(function () {
        wx.agentConfig({ corpid: boot.corpId, agentid: boot.agentId, timestamp: signed.agentConfig.timestamp,
                         nonceStr: signed.agentConfig.nonceStr, signature: signed.agentConfig.signature,
                         jsApiList: boot.jsApiList, success: readContext,
                         fail: function (res) { say("应用授权失败：" + ((res && res.errMsg) || ""), true); } });
      });
    }, function (why) { say(why || "企业微信暂时不可用，请稍后重新打开", true); });
  }
  function readContext() {
    window.wx.invoke("getContext", {}, function (res) {
      var entry = res && res.entry;
      if (entry === "group_chat_tools") {
        window.wx.invoke("getCurExternalChat", {}, function (chat) {
          if (chat.err_msg === "getCurExternalChat:ok") show("group", chat.chatId);
          else say("没能读到当前的客户群", true);
        });
        return;
      }
      window.wx.invoke("getCurExternalContact", {}, function (contact) {
        if (contact.err_msg === "getCurExternalContact:ok") show("contact", contact.userId);
        else say("请在与客户的单聊或客户群里打开", true);
      });
    });
  }
  function insert(words) {
    window.wx.invoke("sendChatMessage", { msgtype: "text", enterChat: false, text: { content: words } }, function (res) {
      if (res.err_msg === "sendChatMessage:ok") toast("已放进聊天框：看一眼，改成你的话，再按发送");
      else toast("没能放进聊天框：" + res.err_msg);
    });
  }

  // -- the cards --------------------------------------------------------------------------
  function show(kind, id) {
    current = { kind: kind, id: id };
    api("GET", "/api/" + kind + "/" + encodeURIComponent(id)).then(function (answer) {
      main.textContent = "";
      if (answer.status !== 200) {
        say("");
        main.appendChild(el("section", {}, [el("p", { "class": "empty", "data-testid": "nothing", text: answer.data.message })]));
        return;
      }
      say("");
      (kind === "group" ? drawGroup : drawContact)(answer.data);
    }, function () { say("网络不通，请稍后再试", true); });
  }
  function reload(message) {
    if (message) toast(message);
    if (current) show(current.kind, current.id);
  }
  function act(path, body, done) {
    return api("POST", path, body).then(function (answer) {
      if (answer.status === 200) reload(done);
      else toast(answer.data.message || "没有成功");
    });
  }
  function section(title, testid, children) {
    return el("section", { "data-testid": testid }, [title ? el("h2", { text: title }) : null].concat(children));
  }
  function chips(items) { return el("div", { "class": "chips" }, items); }
  function layerChips(layers) {
    return layers.map(function (l) { return el("span", { "class": "chip layer", text: l.scheme + " · " + l.layer }); });
  }
  function drawContact(d) {
    var m = d.member;
    var head = [el("h1", { "data-testid": "member-name", text: m.name }),
                el("div", { "class": "sub", "data-testid": "member-store", text: [m.store || "未分配门店", m.owner ? "负责：" + m.owner : "无负责人"].join(" · ") })];
    if (m.remark) head.push(el("div", { "class": "sub", text: "备注：" + m.remark }));
    if (m.opted_out) head.push(el("span", { "class": "badge", text: "已退订营销" }));
    if (m.left) head.push(el("span", { "class": "badge", text: "已流失" }));
    head.push(chips(layerChips(d.layers)));
    if (d.last_move) head.push(el("div", { "class": "sub", "data-testid": "last-move",
      text: "最近变动：" + d.last_move.scheme + " " + (d.last_move.from || "新") + " → " + d.last_move.to + "（" + d.last_move.at + "）" }));
    main.appendChild(section(null, "member", head));
    main.appendChild(drawValue(d.value));
    main.appendChild(section("待办", "tasks", [d.tasks.length ? el("ul", {}, d.tasks.map(drawTask)) : el("p", { "class": "empty", text: "没有待办" })]));
    main.appendChild(drawTags(m.id, d.tags));
    main.appendChild(section("关怀日", "care", [d.care.length ? el("ul", {}, d.care.map(function (c) {
      return el("li", { text: c.name + " " + c.date + "（还有 " + c.days + " 天）" });
    })) : el("p", { "class": "empty", text: "还不知道她的生日和入会日" })]));
    if (d.plan.length) main.appendChild(section("六次互动", "plan", [el("ul", {}, d.plan.map(function (p) {
      return el("li", { text: p.due + " " + p.label + " · " + p.status });
    }))]));
    main.appendChild(section("最近消息", "messages", [d.messages.length ? el("ul", {}, d.messages.map(function (msg) {
      return el("li", { "class": "msg" }, [el("b", { text: msg.at + " " + msg.who + "：" }), document.createTextNode(msg.text)]);
    })) : el("p", { "class": "empty", text: "还没有消息" })]));
  }
  function drawValue(v) {
    if (v.none) return section("价值估算", "value", [el("p", { "class": "empty", "data-testid": "value-none", text: v.none })]);
    return section("价值估算", "value", [
      el("ul", {}, [
        el("li", { "data-testid": "value-p-alive", text: "还会回来买的可能性：" + v.p_alive }),
        el("li", { "data-testid": "value-orders", text: "未来 " + v.days + " 天预计下单：" + v.orders + " 次" }),
        el("li", { "data-testid": "value-spend", text: "未来 " + v.days + " 天预计消费：" + v.spend })]),
      el("p", { "class": "sub", "data-testid": "value-explained", text: v.explained + "（" + v.as_of + " 估算）" })]);
  }
  function drawTask(t) {
    var reason = el("input", { placeholder: "跳过的原因（必填）", maxlength: "500", "data-testid": "skip-reason" });
    var parts = [el("div", { "class": "title", text: t.title }),
                 el("div", { "class": "sub", text: "截止 " + t.due + (t.overdue ? "（已逾期）" : "") + (t.assignee ? " · " + t.assignee : "") })];
    if (t.words) {
      parts.push(el("div", { "class": "words", "data-testid": "task-words", text: t.words }));
      parts.push(el("div", { "class": "row" }, [el("button", { "class": "primary", "data-testid": "insert-words", text: "放进聊天框",
        onclick: function () { insert(t.words); } })]));
    }
    if (t.mine) {
      parts.push(el("div", { "class": "row" }, [
        el("button", { "data-testid": "done-button", text: "做完了", onclick: function () { act("/api/tasks/" + t.id + "/done", {}, "已标记完成，谢谢！"); } }),
        reason,
        el("button", { "data-testid": "skip-button", text: "跳过", onclick: function () {
          if (!reason.value.trim()) { reason.focus(); return toast("跳过需要写原因"); }
          act("/api/tasks/" + t.id + "/skip", { note: reason.value }, "已跳过，原因已记下");
        } })]));
    }
    return el("li", { "class": "task", "data-testid": "task" }, parts);
  }
  function drawTags(memberId, tags) {
    var name = el("input", { placeholder: "加一个标签", maxlength: "64", "data-testid": "tag-name" });
    var rows = tags.map(function (t) {
      var why = t.source + (t.ref ? "（" + t.ref + "）" : "") + " · " + t.hits + " 次 · 自 " + t.since;
      return el("li", { "class": "tag", "data-testid": "tag" }, [
        el("span", { "class": "chip", text: t.name }), el("small", { "class": "sub", text: why }),
        el("button", { "class": "remove", "aria-label": "去掉 " + t.name, text: "×", onclick: function () {
          act("/api/members/" + memberId + "/tags/remove", { name: t.name, group: t.group }, "标签已去掉");
        } })]);
    });
    return section("标签和来由", "tags", [rows.length ? el("ul", {}, rows) : el("p", { "class": "empty", text: "还没有标签" }),
      el("div", { "class": "row" }, [name, el("button", { "data-testid": "tag-add", text: "加上", onclick: function () {
        if (name.value.trim()) act("/api/members/" + memberId + "/tags", { name: name.value }, "标签已加上");
      } })])]);
  }
  function drawGroup(d) {
    main.appendChild(section(null, "group", [el("h1", { "data-testid": "group-name", text: d.group.name }),
      el("div", { "class": "sub", text: d.group.people + " 人" + (d.others ? "，其中 " + d.others + " 人不在你的名单里" : "") })]));
    main.appendChild(section("你服务的成员", "group-members", [d.members.length ? el("ul", {}, d.members.map(function (m) {
      return el("li", { "data-testid": "group-member" }, [el("div", { text: m.name }), chips(layerChips(m.layers))]);
    })) : el("p", { "class": "empty", text: "群里没有你服务的会员" })]));
  }

  start();
})();
