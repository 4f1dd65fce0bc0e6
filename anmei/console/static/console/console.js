"use strict";
let token = null, ws = null;
const $ = (s) => document.querySelector(s);
function log(obj){ const d=document.createElement('div'); d.textContent=new Date().toLocaleTimeString()+' '+JSON.stringify(obj); $('#events').prepend(d); }
async function api(path, opts={}){
  const r = await fetch('/api/v1/'+path, {...opts, headers:{'Content-Type':'application/json', ...(token?{'Authorization':'Bearer '+token}:{})}});
  const body = await r.json().catch(()=>({}));
  if(!r.ok) throw body.error || {message:r.statusText};
  return body;
}
async function loadConversations(){
  const data = await api('conversations?page_size=50');
  $('#conversations').replaceChildren();
  for(const c of data.results){
    const d=document.createElement('div'); d.className='conv';
    // Text nodes only: nicknames and every other field are user data, never HTML.
    const id=document.createElement('b'); id.textContent='#'+c.id;
    const status=document.createElement('span'); status.className='status'; status.textContent=c.status;
    const meta=document.createElement('small'); meta.textContent=c.channel+' · '+c.updated_at;
    d.append(id, ' '+c.customer_nickname+' ', status, document.createElement('br'), meta);
    d.onclick=async()=>{ const m=await api(`conversations/${c.id}/messages`); log({conversation:c.id, messages:m.results.map(x=>x.sender_type+': '+x.content)}); };
    $('#conversations').append(d);
  }
}
async function connect(){
  const {ticket} = await api('auth/ws-ticket', {method:'POST'});
  ws = new WebSocket((location.protocol==='https:'?'wss://':'ws://')+location.host+'/ws/console/?ticket='+encodeURIComponent(ticket));
  ws.onopen=()=>{$('#state').textContent='online';};
  ws.onmessage=(e)=>{ const ev=JSON.parse(e.data); log(ev); if(ev.type!=='pong') loadConversations(); };
  ws.onclose=(e)=>{$('#state').textContent='offline ('+e.code+')'; setTimeout(()=>token&&connect(), 3000);};
  setInterval(()=>ws&&ws.readyState===1&&ws.send(JSON.stringify({type:'ping'})), 20000);
}
$('#login').onsubmit=async(e)=>{
  e.preventDefault(); const f=new FormData(e.target);
  try{ const r=await api('auth/login',{method:'POST',body:JSON.stringify(Object.fromEntries(f))}); token=r.token; log({logged_in:r.user}); await loadConversations(); await connect(); }
  catch(err){ log({error:err}); }
};
