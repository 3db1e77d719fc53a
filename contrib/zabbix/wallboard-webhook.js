// wallboard: the script of a Zabbix "Webhook" media type (Zabbix 5.4 and later).
// Posts the media type's parameters, minus URL and Token, as one JSON object to the
// hub's POST /zabbix (docs/integrations.md, "Zabbix"). Zabbix runs it in Duktape (ES5).
var params = JSON.parse(value);
var url = params.URL;
var token = params.Token;
delete params.URL;
delete params.Token;
if (!url || url.charAt(0) === '{') {
    throw 'wallboard: the URL parameter is empty: set it to http://HUB:8766/zabbix';
}
var req = new HttpRequest();
req.addHeader('Content-Type: application/json');
req.addHeader('X-Wallboard-Client: zabbix');
if (token && token.charAt(0) !== '{') {
    req.addHeader('Authorization: Bearer ' + token);
}
var answer = req.post(url, JSON.stringify(params));
var status = req.getStatus();
if (status !== 200) {
    Zabbix.log(3, '[wallboard webhook] ' + url + ' answered HTTP ' + status + ': ' + answer);
    throw 'wallboard answered HTTP ' + status + ': ' + answer;
}
return 'OK';
