"""Traditional -> simplified Chinese for the characters a support chat is likely to use.

A hand-made table (no download, no dependency) of 651 one-to-one character pairs, written
for this project: common function words, support / account / payment / crypto vocabulary.
Only characters that are never used as a *different* simplified character are listed (e.g.
著, 覆 and 乾 are left out), so applying it to simplified text changes nothing. It is not a
full converter (no phrase-level rules such as 頭髮/头发 vs 發/发 ambiguity, which the
one-to-one pairs here happen not to need).

`to_simplified(text)` is used by `text_features.normalise` so that a message written in
traditional characters ("充幣兩小時了還沒入帳") gets the same features as its simplified
twin ("充币两小时了还没入账").
"""

TRADITIONAL = (
    "丟並亂亞佔來侶係倆倉個們偽備傭傳債傷僅僞價億儘償優儲兌兒內兩冊凍凱別則剛創劃劉劑動務勝勞勢勳勵匯區協卻厲參叢吳員問啞啟喪"
    "喬單嗎嘗噸嚇嚮嚴囉國圍園圓圖團執堅報場塊塵墊壇壓壞壯夠夢奪奮嬰孫學寢實審寫寵寶將專尋對導屆層屬岡島峽崗嶺巒帥師帳帶幣幫幹"
    "幾庫廁廠廢廣廳張強彈彌彙後徑從復徹恆悅惡惱愛態慘慣慮慶憂憑憲憶懇應懶懷戀戰戲戶掃掛採揚換損搖搶撥撫擁擇擊擔據擠擬擴擺擾攜"
    "敗敵數斂斷於時晉晝暈暢暫曆曉會東桿條業極構槍槓樂樓標樣橋機檔檢權歐歡歲歷歸殘殺殼毀氣決沒況洩淚淨減測湯準溝滅滯滿漁漢漲潔"
    "潛澀濃濕濟濾灑灣為烏無煉煙煩熱營爐爭爲爺牆犧狀猶獄獎獨獲獵現環產畢畫異當瘋療癮發盜盡監盤睜矚確碼礎礙礦禍禮稅種稱穩窩窮竊"
    "競筆節範築簡簽籃籌糧糾紀約紅紋納純紙級紛細紹終組結絕絡給統絲綁經綜綠維網緊線編緩練縣縮總績織繫繳繼續罰罷義習聞聯聰聲職聽"
    "肅脫腦膽臉臟與興舉舊艱莊華萬葉蓋藍蘇蘋處號虧蟲術衛衝裏補裝裡製複襲見規視親覺覽觀觸訂計訊討訓託記訟訪設許訴診註証詐評詞詢"
    "試詩話該詳誇誌認語誠誤說誰課調談請論諮諾謀講謝證識譯議護讀變讓讚貝負財貢貨販貪責貴買貸費貼貿資賈賊賓賞賠賢賣賤賦質賬賭賴"
    "購賽贈贏趕趙跡踐蹤躍車軌軍軟較載輔輕輩輪輯輸轉轟辦辭農這連週進運過達違遙遞遠適遲遷選遺還邊邏郵鄉鄰醫釋針釣鈔鈕銀銷鋒鋪錄"
    "錢錯錶鍊鍋鍵鎊鎖鎮鏈鏡鐘鐵鑑鑒鑰鑽長門閃閉開閑閒間閘閣閱闆闖關陣陰陳陸陽隊階際隨險隱隻雖雙雜雞離難雲電靈靜韌韓韻響頁頂項"
    "順須預頒頓領頭頻題額顏願類顧顯風飛飯飲餘館饋馬駭騙騰驅驗驚驟髒體髮鬆鬥鬧魚魯鮮鳥麗麵麼黃點黨齊齒齡龍龐"
)
SIMPLIFIED = (
    "丢并乱亚占来侣系俩仓个们伪备佣传债伤仅伪价亿尽偿优储兑儿内两册冻凯别则刚创划刘剂动务胜劳势勋励汇区协却厉参丛吴员问哑启丧"
    "乔单吗尝吨吓向严啰国围园圆图团执坚报场块尘垫坛压坏壮够梦夺奋婴孙学寝实审写宠宝将专寻对导届层属冈岛峡岗岭峦帅师账带币帮干"
    "几库厕厂废广厅张强弹弥汇后径从复彻恒悦恶恼爱态惨惯虑庆忧凭宪忆恳应懒怀恋战戏户扫挂采扬换损摇抢拨抚拥择击担据挤拟扩摆扰携"
    "败敌数敛断于时晋昼晕畅暂历晓会东杆条业极构枪杠乐楼标样桥机档检权欧欢岁历归残杀壳毁气决没况泄泪净减测汤准沟灭滞满渔汉涨洁"
    "潜涩浓湿济滤洒湾为乌无炼烟烦热营炉争为爷墙牺状犹狱奖独获猎现环产毕画异当疯疗瘾发盗尽监盘睁瞩确码础碍矿祸礼税种称稳窝穷窃"
    "竞笔节范筑简签篮筹粮纠纪约红纹纳纯纸级纷细绍终组结绝络给统丝绑经综绿维网紧线编缓练县缩总绩织系缴继续罚罢义习闻联聪声职听"
    "肃脱脑胆脸脏与兴举旧艰庄华万叶盖蓝苏苹处号亏虫术卫冲里补装里制复袭见规视亲觉览观触订计讯讨训托记讼访设许诉诊注证诈评词询"
    "试诗话该详夸志认语诚误说谁课调谈请论咨诺谋讲谢证识译议护读变让赞贝负财贡货贩贪责贵买贷费贴贸资贾贼宾赏赔贤卖贱赋质账赌赖"
    "购赛赠赢赶赵迹践踪跃车轨军软较载辅轻辈轮辑输转轰办辞农这连周进运过达违遥递远适迟迁选遗还边逻邮乡邻医释针钓钞钮银销锋铺录"
    "钱错表链锅键镑锁镇链镜钟铁鉴鉴钥钻长门闪闭开闲闲间闸阁阅板闯关阵阴陈陆阳队阶际随险隐只虽双杂鸡离难云电灵静韧韩韵响页顶项"
    "顺须预颁顿领头频题额颜愿类顾显风飞饭饮余馆馈马骇骗腾驱验惊骤脏体发松斗闹鱼鲁鲜鸟丽面么黄点党齐齿龄龙庞"
)
assert len(TRADITIONAL) == len(SIMPLIFIED)

TABLE = str.maketrans(TRADITIONAL, SIMPLIFIED)


def to_simplified(text: str) -> str:
    return text.translate(TABLE)
